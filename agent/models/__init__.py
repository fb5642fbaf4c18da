"""Model backends: implementations of the graphs' model protocol (:mod:`graphs.model`).

* :class:`OpenAICompatibleBackend` — any OpenAI-compatible HTTP endpoint (studiolm, OpenAI, vLLM,
  llama.cpp server, Ollama), over an injectable ``httpx.AsyncClient``.
* :class:`LlamaBackend` — a local GGUF model in-process on llama-cpp-python (the embedded default).
* :class:`ScriptedModel` — replays given replies and tool calls, for tests (ours and users').
"""

from agent.models._llama import DEFAULT_LOCAL_MODEL, LlamaBackend
from agent.models._openai import DEFAULT_MAX_RETRIES, DEFAULT_TIMEOUT, OpenAICompatibleBackend, ResponseLimits
from agent.models._scripted import ScriptedCall, ScriptedModel, ScriptedReply

__all__ = [
    "DEFAULT_LOCAL_MODEL",
    "DEFAULT_MAX_RETRIES",
    "DEFAULT_TIMEOUT",
    "LlamaBackend",
    "OpenAICompatibleBackend",
    "ResponseLimits",
    "ScriptedCall",
    "ScriptedModel",
    "ScriptedReply",
]
