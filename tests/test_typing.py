"""A user's type checker learns the SDK's types: mypy over a small user script, checking what it infers."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

USER_SCRIPT = '''
import agent
from agent import AsyncClient, Client

client = Client(search="none")
reveal_type(client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}]))
reveal_type(client.chat.completions.create(model="m", messages=[{"role": "user", "content": "hi"}], stream=True))
for chunk in client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], stream=True):
    reveal_type(chunk)
client.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}], temprature=0.5)
client.chat.completions.create(model="m", messages=[{"role": "wizard", "content": "x"}])
client.chat.completions.create(model="m", messages=[], max_tokens="many")
Client(serch="none")


async def main() -> None:
    async_client = AsyncClient(limits=agent.ChatLimits(max_reasks=1))
    reveal_type(await async_client.chat.completions.create(model="m", messages=[], stream=True))
    reveal_type(await async_client.chat.completions.create(model="m", messages=[], web_search="force"))
'''


def test_mypy_infers_the_sdk_types(tmp_path: Path) -> None:
    script = tmp_path / "user_script.py"
    script.write_text(USER_SCRIPT)
    done = subprocess.run([sys.executable, "-m", "mypy", "--no-incremental", "--strict", "--follow-imports=silent",
                           "--ignore-missing-imports", str(script)], capture_output=True, text=True, timeout=300,
                          check=False, cwd=tmp_path, env={**os.environ, "MYPYPATH": str(ROOT)})
    out = done.stdout
    revealed = [line.split("Revealed type is ")[1].strip('"') for line in out.splitlines() if "Revealed type" in line]
    assert revealed == [
        "agent._types.ChatCompletion",
        "agent._client.Stream",
        "agent._types.ChatCompletionChunk",
        "agent._client.AsyncStream",
        "agent._types.ChatCompletion",
    ], out
    errors = [line for line in out.splitlines() if ": error:" in line]
    assert any(":10: error:" in line and "temprature" in line for line in errors), out  # a misspelt parameter
    assert any(":11: error:" in line for line in errors), out  # a message whose role does not exist
    assert any(":12: error:" in line for line in errors), out  # max_tokens="many"
    assert any(":13: error:" in line and "serch" in line for line in errors), out  # a misspelt client option
    assert not any(f":{n}: error:" in line for line in errors for n in (6, 7, 8, 9, 17, 18, 19)), out
