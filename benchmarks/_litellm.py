"""LiteLLM's proxy as a baseline, installed by the harness into its own virtualenv.

``benchmarks/.litellm-venv`` (git-ignored) gets ``litellm[proxy]`` on first use; the proxy then
runs on loopback with one worker, a config whose only model is the fake upstream, no callbacks,
no database and the local model-cost map (so it never reaches the network).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from benchmarks._procs import ROOT

VENV = ROOT / "benchmarks" / ".litellm-venv"
#: What pip installs; 1.107.0 is excluded (a compromised release, withdrawn from PyPI).
SPEC = "litellm[proxy]!=1.107.0"
#: pip may build wheels; bounded so a broken install cannot stall the benchmark.
INSTALL_TIMEOUT_SECONDS = 900
ENV = {
    "LITELLM_LOCAL_MODEL_COST_MAP": "True",  # no download of the cost map at start-up
    "LITELLM_TELEMETRY": "False",
    "LITELLM_LOG": "ERROR",
    "DISABLE_ADMIN_UI": "True",
    "NO_DOCS": "True",
}


def executable() -> Path:
    return VENV / "bin" / "litellm"


def ensure_installed(log: Path) -> str | None:
    """Install the proxy if it is missing; ``None`` when ready, else why it is not."""
    if executable().exists():
        return None
    try:
        with open(log, "wb") as out:
            if not (VENV / "bin" / "python").exists():
                subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True, stdout=out, stderr=out)
            subprocess.run([str(VENV / "bin" / "pip"), "install", "-q", SPEC], check=True, stdout=out,
                           stderr=out, timeout=INSTALL_TIMEOUT_SECONDS)
    except (OSError, subprocess.SubprocessError) as exc:
        return f"could not install {SPEC} into {VENV.relative_to(ROOT)} ({exc}); see {log}"
    return None if executable().exists() else f"{SPEC} installed no `litellm` command"


def version() -> str:
    done = subprocess.run([str(VENV / "bin" / "python"), "-c",
                           "import importlib.metadata as m; print(m.version('litellm'))"],
                          capture_output=True, text=True, check=False)
    return done.stdout.strip() or "?"


def write_config(path: Path, upstream: str, model: str, key: str) -> None:
    path.write_text(
        "model_list:\n"
        f"  - model_name: {model}\n"
        "    litellm_params:\n"
        f"      model: openai/{model}\n"
        f"      api_base: {upstream}\n"
        f"      api_key: {key}\n"
        "      max_retries: 0\n"
        "litellm_settings:\n"
        "  telemetry: false\n"
        "  callbacks: []\n"
        "  success_callback: []\n"
        "  failure_callback: []\n"
        "  num_retries: 0\n"
        "  request_timeout: 60\n"
        "general_settings:\n"
        f"  master_key: {key}\n"
    )


def command(config: Path, port: int) -> tuple[list[str], dict[str, str]]:
    """The proxy's command line and environment."""
    env = {**ENV, "PATH": f"{VENV / 'bin'}:{os.environ.get('PATH', '')}"}
    argv = [str(executable()), "--config", str(config), "--host", "127.0.0.1", "--port", str(port),
            "--num_workers", "1"]
    return argv, env
