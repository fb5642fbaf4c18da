"""OpenAI's chat-completions request, as data: every body field, message role, content part, tool and
response-format shape, each with VALID example values that a test can post (the field sweep,
``test_compat_field_sweep.py``), and the proposed disposition of each in studiolm (issue 9).

Source: ``openai`` 3.57.0 (3.51.0 has identical chat request types):
``openai/types/chat/completion_create_params.py`` and the message/tool/content-part ``*_param.py``
files beside it, cross-checked with the OpenAPI-generated request types
(``CreateChatCompletionRequest``: the same 34 fields, plus ``moderation`` and ``prompt_cache_options``
that 3.51 added). ``top_k``, ``min_p`` and ``repetition_penalty`` are not OpenAI's: they are the
common server extras (vLLM, llama.cpp server) that issue 9 asks for; ``web_search`` is ours.

Each entry of :data:`FIELDS`:

``name``, ``type`` (JSON type), ``values`` (allowed values / range), ``default`` (OpenAI's, or
studiolm's where ours differs: see ``notes``), ``deprecated``, ``description`` (one line),
``examples`` (request-body fragments, each posted together with ``model`` and ``messages``; a fragment
carries the companion fields a value needs, e.g. ``top_logprobs`` with ``logprobs: true``), and the
proposed disposition:

``local``     the embedded llama.cpp model (and the scripted model in tests):
              ``"applied"`` (mapped onto decoding / the graph), ``"no-op"`` (accepted, documented to
              change nothing), ``"400"`` (valid for OpenAI but cannot be honoured: a 400 naming it).
``upstream``  an OpenAI-compatible upstream: ``"forwarded"`` (sent on as given, or renamed where an
              upstream knows only one spelling), ``"applied"`` (honoured by our own edge or graph
              and not sent on: ``stream``, ``stream_options``, ``web_search``...).

Examples marked ``local: "400"`` are posted expecting that 400 on the local backend and a 200 upstream.
"""

from __future__ import annotations

from typing import Any, Literal, TypedDict

__all__ = [
    "CONTENT_PARTS",
    "FIELDS",
    "MESSAGE_EXAMPLES",
    "MESSAGE_ROLES",
    "RESPONSE_FORMATS",
    "SERVER_EXTRAS",
    "STREAM_OPTIONS",
    "TOOL_CHOICES",
    "TOOLS",
    "FieldSpec",
    "MessageExample",
    "field",
]

Disposition = Literal["applied", "no-op", "400", "forwarded"]


class FieldSpec(TypedDict):
    """One request-body field (see the module docstring)."""

    name: str
    type: str
    values: str
    default: Any
    deprecated: bool
    description: str
    examples: list[dict[str, Any]]
    local: Disposition
    upstream: Disposition
    notes: str


class MessageExample(TypedDict):
    """A valid ``messages`` list exercising one role/field/part, with its proposed disposition."""

    id: str
    messages: list[dict[str, Any]]
    local: Disposition
    upstream: Disposition
    param: str  # the parameter a 400 must name when ``local`` is "400"


# --- Shapes used by the field examples ------------------------------------------------------------------

WEATHER_PARAMETERS: dict[str, Any] = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}

#: ``tools[]`` items: a function tool (``strict`` optional, null or bool) and a custom tool (free text
#: or a lark/regex grammar).
TOOLS: dict[str, dict[str, Any]] = {
    "function": {"type": "function", "function": {
        "name": "get_weather", "description": "Current weather for a city.", "parameters": WEATHER_PARAMETERS}},
    "function_strict": {"type": "function", "function": {
        "name": "get_weather", "description": "Current weather for a city.", "parameters": WEATHER_PARAMETERS,
        "strict": True}},
    "function_no_parameters": {"type": "function", "function": {"name": "get_time"}},
    "custom_text": {"type": "custom", "custom": {"name": "run_sql", "description": "Runs one SQL query.",
                                                  "format": {"type": "text"}}},
    "custom_grammar": {"type": "custom", "custom": {"name": "pick_digit", "format": {
        "type": "grammar", "grammar": {"syntax": "regex", "definition": "[0-9]"}}}},
}

#: ``tool_choice`` values (each needs ``tools`` beside it).
TOOL_CHOICES: dict[str, Any] = {
    "none": "none",
    "auto": "auto",
    "required": "required",
    "named_function": {"type": "function", "function": {"name": "get_weather"}},
    "allowed_tools": {"type": "allowed_tools", "allowed_tools": {
        "mode": "auto", "tools": [{"type": "function", "function": {"name": "get_weather"}}]}},
    "named_custom": {"type": "custom", "custom": {"name": "run_sql"}},
}

#: ``response_format`` values.
RESPONSE_FORMATS: dict[str, Any] = {
    "text": {"type": "text"},
    "json_object": {"type": "json_object"},
    "json_schema": {"type": "json_schema", "json_schema": {
        "name": "person", "description": "A person and their birth year.", "strict": True,
        "schema": {"type": "object", "properties": {"name": {"type": "string"}, "year": {"type": "integer"}},
                   "required": ["name", "year"], "additionalProperties": False}}},
    "json_schema_minimal": {"type": "json_schema", "json_schema": {"name": "anything"}},
}

#: ``stream_options`` subfields (only with ``stream: true``).
STREAM_OPTIONS: dict[str, dict[str, str]] = {
    "include_usage": {"type": "boolean", "description": "one extra chunk with `choices: []` and the usage "
                      "just before [DONE]; every other chunk has `usage: null`"},
    "include_obfuscation": {"type": "boolean", "description": "random `obfuscation` padding on delta chunks "
                            "(a side-channel mitigation); default true at OpenAI"},
}

_USER = {"role": "user", "content": "Hi"}
_CALL = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}

# --- Request-body fields -------------------------------------------------------------------------------


def field(name: str, type_: str, values: str, default: Any, description: str, examples: list[dict[str, Any]],
          local: Disposition, upstream: Disposition = "forwarded", *, deprecated: bool = False,
          notes: str = "") -> FieldSpec:
    """One :class:`FieldSpec` (keeps the table below one entry per line group)."""
    return FieldSpec(name=name, type=type_, values=values, default=default, deprecated=deprecated,
                     description=description, examples=examples, local=local, upstream=upstream, notes=notes)


FIELDS: list[FieldSpec] = [
    field("model", "string", "a served model id", None, "Model id (required); unknown ids are a 404 listing "
          "the served ones.", [{}], "applied"),
    field("messages", "array of message objects", "see MESSAGE_ROLES", None,
          "The conversation (required, non-empty).", [{}], "applied"),
    field("audio", "object | null", '{"format": wav|aac|mp3|flac|opus|pcm16, "voice": name | {"id"}}', None,
          "Audio output parameters; required with modalities [\"audio\"].",
          [{"modalities": ["text", "audio"], "audio": {"format": "wav", "voice": "alloy"}}], "400",
          notes="local models produce no audio: a 400 naming `audio`/`modalities`; null is a no-op"),
    field("frequency_penalty", "number | null", "-2.0 .. 2.0", 0.0, "Penalise tokens by their frequency so far.",
          [{"frequency_penalty": 0.5}], "applied"),
    field("function_call", '"none" | "auto" | {"name"}', "a function of `functions`", None,
          "Deprecated tool_choice for `functions`.",
          [{"functions": [{"name": "get_weather", "parameters": WEATHER_PARAMETERS}], "function_call": "auto"},
           {"functions": [{"name": "get_weather", "parameters": WEATHER_PARAMETERS}],
            "function_call": {"name": "get_weather"}}],
          "applied", deprecated=True, notes="map onto tool_choice; answer with message.function_call"),
    field("functions", "array of {name, description?, parameters?}", "up to 128", None,
          "Deprecated list of functions (the old `tools`).",
          [{"functions": [{"name": "get_weather", "description": "Weather.", "parameters": WEATHER_PARAMETERS}]}],
          "applied", deprecated=True, notes="map onto tools"),
    field("logit_bias", "object<string token id, integer> | null", "bias -100 .. 100", None,
          "Add a bias to given token ids' logits.", [{"logit_bias": {"50256": -100}}], "applied",
          notes="token ids are the backend's tokenizer's; an id outside the vocabulary is a 400"),
    field("logprobs", "boolean | null", "true | false", False, "Return the log probability of each output token.",
          [{"logprobs": True}, {"logprobs": False}], "applied"),
    field("max_completion_tokens", "integer | null", ">= 1 (studiolm: <= ServerLimits.max_tokens)", None,
          "Upper bound on generated tokens (incl. reasoning); the successor of max_tokens.",
          [{"max_completion_tokens": 50}], "applied",
          notes="same limit as max_tokens locally; upstream: sent as whichever of the pair it knows"),
    field("max_tokens", "integer | null", ">= 1 (studiolm: <= ServerLimits.max_tokens)", 1000,
          "Maximum tokens to generate (deprecated by OpenAI for max_completion_tokens).",
          [{"max_tokens": 50}], "applied", deprecated=True, notes="studiolm default 1000"),
    field("metadata", "object<string, string> | null", "<= 16 pairs; keys <= 64, values <= 512 chars", None,
          "Key-value tags stored with the completion.", [{"metadata": {"project": "compat"}}], "no-op"),
    field("modalities", 'array of "text" | "audio" | null', '["text"] or ["text", "audio"]', ["text"],
          "Output modalities.", [{"modalities": ["text"]}], "no-op",
          notes='["text"] is a no-op; "audio" locally is a 400 (see audio)'),
    field("moderation", "object | null", '{"model", "policy"?: {"input"?: {"mode": score|block}, "output"?}}',
          None, "Run moderation on input and output (openai 3.51+).",
          [{"moderation": {"model": "omni-moderation-latest"}}], "400",
          notes="locally there is no moderation model: refuse rather than silently skip what was asked"),
    field("n", "integer | null", "1 .. a documented studiolm limit (OpenAI: 1..128)", 1,
          "Number of choices to generate.", [{"n": 1}, {"n": 2}], "applied", "applied",
          notes="issue 9: n > 1 = one search, n generations (by us, not the upstream), up to a documented limit"),
    field("parallel_tool_calls", "boolean", "true | false", True,
          "Allow several tool calls in one turn; false = at most one.",
          [{"tools": [TOOLS["function"]], "parallel_tool_calls": False},
           {"tools": [TOOLS["function"]], "parallel_tool_calls": True}], "applied"),
    field("prediction", "object | null", '{"type": "content", "content": string | text parts}', None,
          "Predicted output (a latency optimisation).",
          [{"prediction": {"type": "content", "content": "Hello"}}, {"prediction": None}], "no-op"),
    field("presence_penalty", "number | null", "-2.0 .. 2.0", 0.0, "Penalise tokens that already appeared.",
          [{"presence_penalty": 0.5}], "applied"),
    field("prompt_cache_key", "string | null", "any string", None, "Prompt-cache bucketing key (replaces user).",
          [{"prompt_cache_key": "compat-tests"}], "no-op"),
    field("prompt_cache_options", "object", '{"mode"?: implicit|explicit, "ttl"?: "30m"}', None,
          "Prompt-caching breakpoints/TTL (openai 3.51+).",
          [{"prompt_cache_options": {"mode": "implicit", "ttl": "30m"}}], "no-op"),
    field("prompt_cache_retention", '"in_memory" | "24h" | null', "in_memory | 24h", None,
          "Prompt-cache retention.", [{"prompt_cache_retention": "24h"}], "no-op", deprecated=True),
    field("reasoning_effort", "string | null", "none | minimal | low | medium | high | xhigh | max", None,
          "Reasoning effort for reasoning models.", [{"reasoning_effort": "low"}], "no-op",
          notes="the embedded models do not reason"),
    field("response_format", "object", "text | json_object | json_schema (see RESPONSE_FORMATS)", {"type": "text"},
          "Output format: text, any JSON object, or a JSON schema (strict optional).",
          [{"response_format": v} for v in RESPONSE_FORMATS.values()], "applied",
          notes='studiolm also accepts "json" and a bare schema'),
    field("safety_identifier", "string | null", "<= 128 chars", None, "Stable end-user id for abuse detection.",
          [{"safety_identifier": "user-hash-1"}], "no-op"),
    field("seed", "integer | null", "int64", None, "Best-effort deterministic sampling.", [{"seed": 7}], "applied"),
    field("service_tier", "string | null", "auto | default | flex | scale | priority | fast", "auto",
          "Processing tier.", [{"service_tier": "auto"}, {"service_tier": "flex"}], "no-op"),
    field("stop", "string | array of string | null", "up to 4 sequences", None,
          "Stop generating at any of these; not included in the output.",
          [{"stop": "\n\n"}, {"stop": ["END", "STOP"]}, {"stop": None}], "applied"),
    field("store", "boolean | null", "true | false", False, "Store the completion for distillation/evals.",
          [{"store": True}, {"store": False}], "no-op"),
    field("stream", "boolean | null", "true | false", False, "Stream server-sent events.",
          [{"stream": True}], "applied", "applied", notes="the upstream backend always streams"),
    field("stream_options", "object | null", "see STREAM_OPTIONS; only with stream: true", None,
          "Streaming options: include_usage, include_obfuscation.",
          [{"stream": True, "stream_options": {"include_usage": True}},
           {"stream": True, "stream_options": {"include_obfuscation": False}}], "applied", "applied"),
    field("temperature", "number | null", "0 .. 2", 1.0, "Sampling temperature.", [{"temperature": 0.2}],
          "applied", notes="studiolm default 0.7"),
    field("tool_choice", "string | object", "see TOOL_CHOICES", "auto with tools, none without",
          "Which tool (if any) the model must call.",
          [{"tools": [TOOLS["function"]], "tool_choice": TOOL_CHOICES[k]}
           for k in ("none", "auto", "required", "named_function", "allowed_tools")], "applied"),
    field("tools", "array of tool objects", "function (with strict) | custom (see TOOLS)", None,
          "Tools the model may call.",
          [{"tools": [TOOLS["function"]]}, {"tools": [TOOLS["function_strict"]]},
           {"tools": [TOOLS["function_no_parameters"]]}], "applied", notes="function.strict is forwarded upstream"),
    field("tools.custom", "array of tool objects", 'custom tools: {"type": "custom", "custom": {name, '
          'description?, format?: text | grammar(lark|regex)}}', None, "Custom (free-text/grammar) tools.",
          [{"tools": [TOOLS["custom_text"]]}, {"tools": [TOOLS["custom_grammar"]]},
           {"tools": [TOOLS["custom_text"]], "tool_choice": TOOL_CHOICES["named_custom"]}], "400", "400",
          notes="a 400 naming tools[i] everywhere: the graph runs and returns function calls only"),
    field("top_logprobs", "integer | null", "0 .. 20; needs logprobs: true", None,
          "How many most likely alternatives to return per token.",
          [{"logprobs": True, "top_logprobs": 3}], "applied"),
    field("top_p", "number | null", "0 .. 1", 1.0, "Nucleus sampling mass.", [{"top_p": 0.9}], "applied"),
    field("user", "string", "any string", None, "End-user id (being replaced by safety_identifier / "
          "prompt_cache_key).", [{"user": "user-1"}], "no-op", deprecated=True),
    field("verbosity", '"low" | "medium" | "high" | null', "low | medium | high", "medium",
          "How verbose the answer should be.", [{"verbosity": "low"}], "no-op",
          notes="could become a system-prompt hint; no-op for now"),
    field("web_search_options", "object", '{"search_context_size"?: low|medium|high, "user_location"?: '
          '{"type": "approximate", "approximate": {city?, country?, region?, timezone?}}}', None,
          "OpenAI's built-in web search (search-preview models).",
          [{"web_search_options": {}},
           {"web_search_options": {"search_context_size": "low", "user_location": {
               "type": "approximate", "approximate": {"country": "FR", "city": "Paris"}}}}],
          "applied", "applied",
          notes="proposal: maps onto our web_search graph (web_search='auto' unless given); not forwarded"),
]

#: Not OpenAI's: the sampling extras that vLLM / llama.cpp server accept and issue 9 asks for.
SERVER_EXTRAS: list[FieldSpec] = [
    field("top_k", "integer", ">= 0 (0 = off)", 40, "Sample from the k most likely tokens.", [{"top_k": 20}],
          "applied"),
    field("min_p", "number", "0 .. 1", 0.05, "Drop tokens below min_p x the top probability.", [{"min_p": 0.1}],
          "applied"),
    field("repetition_penalty", "number", "> 0 (1 = off)", 1.0, "Multiplicative repeat penalty (llama.cpp "
          "repeat_penalty).", [{"repetition_penalty": 1.1}], "applied"),
    field("web_search", 'false | "auto" | "force" | "images"', "see DESIGN §1", False,
          "studiolm: search the web before/while answering.", [{"web_search": False}], "applied", "applied"),
]

# --- Messages ------------------------------------------------------------------------------------------

#: Every role and the fields its message may carry (``*`` = required).
MESSAGE_ROLES: dict[str, dict[str, str]] = {
    "developer": {"role*": '"developer"', "content*": "string | text parts", "name": "string"},
    "system": {"role*": '"system"', "content*": "string | text parts", "name": "string"},
    "user": {"role*": '"user"', "content*": "string | parts: text, image_url, input_audio, file",
             "name": "string"},
    "assistant": {"role*": '"assistant"', "content": "string | text/refusal parts | null (required unless "
                  "tool_calls/function_call)", "refusal": "string | null", "tool_calls": "function | custom "
                  "calls", "function_call": "{name, arguments} | null (deprecated)", "audio": "{id} | null",
                  "name": "string", "annotations": "url_citation list (response field; clients echo it back)"},
    "tool": {"role*": '"tool"', "content*": "string | text parts", "tool_call_id*": "string"},
    "function": {"role*": '"function"', "content*": "string | null", "name*": "string (deprecated role)"},
}

#: Content parts (``prompt_cache_breakpoint: {"mode": "explicit", "ttl"?: "30m"|"12h"}`` may ride on any
#: text/image/audio/file part since openai 3.51).
CONTENT_PARTS: dict[str, dict[str, Any]] = {
    "text": {"type": "text", "text": "Hi"},
    "text_cache_breakpoint": {"type": "text", "text": "Hi", "prompt_cache_breakpoint": {"mode": "explicit"}},
    "image_url": {"type": "image_url", "image_url": {"url": "https://example.com/cat.png", "detail": "low"}},
    "image_data_url": {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    "input_audio": {"type": "input_audio", "input_audio": {"data": "UklGRgAAAABXQVZF", "format": "wav"}},
    "file": {"type": "file", "file": {"filename": "a.txt", "file_data": "data:text/plain;base64,SGk="}},
    "refusal": {"type": "refusal", "refusal": "I can't help with that."},  # assistant content only
}

_CITED = {"role": "assistant", "content": "Kubrick directed it [1].", "refusal": None, "annotations": [
    {"type": "url_citation", "url_citation": {"url": "https://en.wikipedia.org/wiki/2001", "title": "2001",
                                              "start_index": 20, "end_index": 23}}]}


def _example(id_: str, messages: list[dict[str, Any]], local: Disposition = "applied",
             upstream: Disposition = "forwarded", param: str = "") -> MessageExample:
    return MessageExample(id=id_, messages=messages, local=local, upstream=upstream, param=param)


MESSAGE_EXAMPLES: list[MessageExample] = [
    _example("developer", [{"role": "developer", "content": "Be brief."}, _USER]),
    _example("developer_name_parts", [{"role": "developer", "name": "ops", "content": [CONTENT_PARTS["text"]]},
                                      _USER]),
    _example("system_name", [{"role": "system", "name": "ops", "content": "Be brief."}, _USER]),
    _example("user_name", [{"role": "user", "name": "ada", "content": "Hi"}]),
    _example("user_text_parts", [{"role": "user", "content": [CONTENT_PARTS["text"], CONTENT_PARTS["text"]]}]),
    _example("user_text_cache_breakpoint", [{"role": "user", "content": [CONTENT_PARTS["text_cache_breakpoint"]]}],
             "no-op"),
    _example("user_image_url", [{"role": "user", "content": [CONTENT_PARTS["text"], CONTENT_PARTS["image_url"]]}],
             "400", param="messages[0].content[1]"),
    _example("user_image_data_url", [{"role": "user", "content": [CONTENT_PARTS["image_data_url"]]}],
             "400", param="messages[0].content[0]"),
    _example("user_input_audio", [{"role": "user", "content": [CONTENT_PARTS["input_audio"]]}],
             "400", param="messages[0].content[0]"),
    _example("user_file", [{"role": "user", "content": [CONTENT_PARTS["file"]]}],
             "400", param="messages[0].content[0]"),
    _example("assistant_all_nulls", [_USER, {"role": "assistant", "content": "Hello", "refusal": None,
                                             "tool_calls": None, "function_call": None, "audio": None,
                                             "annotations": None}, _USER]),
    _example("assistant_annotations", [_USER, _CITED, _USER]),
    _example("assistant_refusal", [_USER, {"role": "assistant", "content": None, "refusal": "I can't."}, _USER]),
    _example("assistant_refusal_part", [_USER, {"role": "assistant", "content": [CONTENT_PARTS["refusal"]]}, _USER]),
    _example("assistant_name", [_USER, {"role": "assistant", "name": "bot", "content": "Hello"}, _USER]),
    _example("assistant_audio_id", [_USER, {"role": "assistant", "content": "Hello", "audio": {"id": "audio_1"}},
                                    _USER]),  # a response-only field: accepted back, not passed on
    _example("assistant_tool_calls_then_tool", [
        _USER, {"role": "assistant", "content": None, "tool_calls": [_CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"sky": "sunny"}'}]),
    _example("tool_text_parts", [
        _USER, {"role": "assistant", "content": None, "tool_calls": [_CALL]},
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": '{"sky": "sunny"}'}]}]),
    _example("assistant_custom_tool_call", [
        _USER, {"role": "assistant", "content": None, "tool_calls": [
            {"id": "call_2", "type": "custom", "custom": {"name": "run_sql", "input": "SELECT 1"}}]},
        {"role": "tool", "tool_call_id": "call_2", "content": "1"}], "400", "400", param="messages[1].tool_calls[0]"),
    _example("function_role", [
        _USER, {"role": "assistant", "content": None,
                "function_call": {"name": "get_weather", "arguments": '{"city": "Paris"}'}},
        {"role": "function", "name": "get_weather", "content": '{"sky": "sunny"}'}]),
]
