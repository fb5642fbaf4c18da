"""The in-process measurements: SDK per call against raw httpx / openai / LangGraph, the embedded model
through the stack against raw llama-cpp-python, local search and cached JSON validation."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

import httpx

from benchmarks._load import KEY, MODEL, median_spread, quantile

Call = Callable[[], Awaitable[None]]
MESSAGES = [{"role": "user", "content": "hello"}]


# --- SDK per call ----------------------------------------------------------------------------------------


def sdk_calls(upstream: str, stream: bool, http: httpx.AsyncClient) -> dict[str, Call]:
    """One call per contender, each reading the whole answer."""
    from openai import AsyncOpenAI

    from agent import AsyncClient

    ours = AsyncClient(api_key=KEY, base_url=upstream, search="none", max_retries=0)
    openai = AsyncOpenAI(api_key=KEY, base_url=upstream, max_retries=0, http_client=http)
    graph = _langgraph(upstream, stream)
    payload = {"model": MODEL, "messages": MESSAGES, "stream": stream}
    headers = {"Authorization": f"Bearer {KEY}"}

    async def raw() -> None:
        if not stream:
            (await http.post(f"{upstream}/chat/completions", json=payload, headers=headers)).json()
            return
        async with http.stream("POST", f"{upstream}/chat/completions", json=payload, headers=headers) as r:
            async for _ in r.aiter_lines():
                pass

    async def studiolm() -> None:
        result = await ours.chat.completions.create(model=MODEL, messages=MESSAGES, stream=stream)
        if stream:
            async for _ in result:
                pass

    async def openai_sdk() -> None:
        result = await openai.chat.completions.create(model=MODEL, messages=MESSAGES, stream=stream)  # type: ignore[call-overload]
        if stream:
            async for _ in result:
                pass

    return {"raw httpx": raw, "studiolm AsyncClient": studiolm, "openai SDK": openai_sdk,
            **({"LangGraph + ChatOpenAI": graph} if graph else {})}


def _langgraph(upstream: str, stream: bool) -> Call | None:
    try:
        from langchain_openai import ChatOpenAI
        from langgraph.graph import START, MessagesState, StateGraph
    except ImportError:
        return None
    llm = ChatOpenAI(model=MODEL, base_url=upstream, api_key=KEY, max_retries=0, streaming=stream)  # type: ignore[arg-type]

    async def node(state: MessagesState) -> dict[str, Any]:
        return {"messages": [await llm.ainvoke(state["messages"])]}

    builder = StateGraph(MessagesState)
    builder.add_node("model", node)
    builder.add_edge(START, "model")
    app = builder.compile()
    state = {"messages": [("user", "hello")]}

    async def call() -> None:
        if stream:
            async for _ in app.astream(state, stream_mode="messages"):  # type: ignore[arg-type]
                pass
        else:
            await app.ainvoke(state)  # type: ignore[arg-type]

    return call


async def sdk_per_call(upstream: str, *, calls: int, reps: int, words: int) -> list[dict[str, Any]]:
    """Mean seconds per sequential call, per rep (contenders interleaved rep by rep), median of reps."""
    rows = []
    async with httpx.AsyncClient(timeout=60) as http:
        for stream in (False, True):
            contenders = sdk_calls(upstream, stream, http)
            per_rep: dict[str, list[float]] = {name: [] for name in contenders}
            for call in contenders.values():
                for _ in range(max(3, calls // 10)):
                    await call()
            for _ in range(reps):
                for name, call in contenders.items():
                    began = time.perf_counter()
                    for _ in range(calls):
                        await call()
                    per_rep[name].append((time.perf_counter() - began) / calls * 1000)
            raw = statistics.median(per_rep["raw httpx"])
            for name, values in per_rep.items():
                ms = median_spread(values)
                rows.append({"mode": "stream" if stream else "non-stream", "client": name, "ms_per_call": ms,
                             "ratio_to_raw": ms["median"] / raw,
                             "extra_ms_per_chunk": (ms["median"] - raw) / (words + 2) if stream else None})
    return rows


# --- The embedded model ----------------------------------------------------------------------------------

PROMPT = [{"role": "user", "content": "Write a short paragraph about the sea."}]


#: The tiers measured, smallest first: the tiny tier shows the per-token overhead best (its tokens are
#: the fastest), the default tier is what users run.
MODEL_TIERS = ("smollm2-135m-instruct", "qwen2.5-coder-0.5b-instruct")


def tier_path(model_id: str) -> str | None:
    """The verified GGUF file of an installed tier (joined into the cache on first use), else None."""
    from agent.models._files import TIERS, installed_tiers, model_path

    tier = TIERS[model_id]
    return str(model_path(tier)) if installed_tiers([tier]) else None


async def embedded(*, max_tokens: int, reps: int) -> dict[str, Any]:
    """Tokens per second of one free-text answer per tier: AsyncClient(LlamaBackend) vs raw llama-cpp."""
    try:
        import llama_cpp  # noqa: F401
    except ImportError:
        return {"skipped": "llama-cpp-python is not installed"}
    tiers = []
    for model_id in MODEL_TIERS:
        path = tier_path(model_id)
        if path is None:
            tiers.append({"model_id": model_id, "skipped": "not installed"})
            continue
        print(f"  {model_id}", flush=True)
        tiers.append(await embedded_tier(model_id, path, max_tokens=max_tokens, reps=reps))
    return {"tiers": tiers}


async def embedded_tier(model_id: str, path: str, *, max_tokens: int, reps: int) -> dict[str, Any]:
    """One tier: the stack and raw llama-cpp-python on the same GGUF file, taking turns rep by rep."""
    import llama_cpp

    from agent import AsyncClient, LlamaBackend

    threads = max(1, min((os.cpu_count() or 1) // 2, 4))  # the backend's own default
    client = AsyncClient(backend=LlamaBackend(n_threads=threads), search="none")
    raw = llama_cpp.Llama(model_path=path, n_ctx=4096, n_threads=threads, n_threads_batch=threads, verbose=False)
    sampling = {"max_tokens": max_tokens, "temperature": 0.0}

    prompts: dict[str, int] = {}

    async def stack() -> tuple[int, float]:
        began = time.perf_counter()
        out = await client.chat.completions.create(model=model_id, messages=PROMPT, **sampling)  # type: ignore[call-overload]
        prompts["stack"] = out.usage.prompt_tokens
        return out.usage.completion_tokens, time.perf_counter() - began

    def direct() -> tuple[int, float]:
        began = time.perf_counter()
        out = raw.create_chat_completion(messages=PROMPT, top_k=40, min_p=0.05, repeat_penalty=1.1, **sampling)
        prompts["raw"] = out["usage"]["prompt_tokens"]
        return out["usage"]["completion_tokens"], time.perf_counter() - began

    await stack()
    direct()  # warm both (model load, first prompt)
    rates: dict[str, list[float]] = {"stack": [], "raw": []}
    for _ in range(reps):
        tokens, seconds = await stack()
        rates["stack"].append(tokens / seconds)
        tokens, seconds = await asyncio.to_thread(direct)
        rates["raw"].append(tokens / seconds)
    await client.aclose()
    stack_rate, raw_rate = median_spread(rates["stack"]), median_spread(rates["raw"])
    return {"model_id": model_id, "model": os.path.basename(path), "threads": threads, "max_tokens": max_tokens,
            "stack_tokens_per_s": stack_rate, "raw_tokens_per_s": raw_rate,
            "ratio": stack_rate["median"] / raw_rate["median"], "prompt_tokens": prompts}


# --- Search and validation -------------------------------------------------------------------------------

QUERIES = ["Paris", "photosynthesis", "Roman empire", "jazz music", "volcano eruption", "Isaac Newton",
           "the moon landing", "DNA", "Amazon river", "world war", "computer", "Mozart"]


async def local_search(*, queries: int, reps: int) -> dict[str, Any]:
    """Milliseconds per query on the offline corpus index (built or opened first)."""
    from agent import LocalIndex

    try:
        index = await LocalIndex.from_corpus().prepare()
    except Exception as exc:  # the corpus package may be missing: report, do not fail the run
        return {"skipped": f"{type(exc).__name__}: {exc}"}
    p50s, p95s = [], []
    for _ in range(reps):
        times = []
        for i in range(queries):
            began = time.perf_counter()
            await index.search(QUERIES[i % len(QUERIES)], max_results=5)
            times.append((time.perf_counter() - began) * 1000)
        p50s.append(quantile(times, 0.5))
        p95s.append(quantile(times, 0.95))
    await index.aclose()
    return {"documents": index.document_count, "p50_ms": median_spread(p50s), "p95_ms": median_spread(p95s)}


def validation(*, calls: int, reps: int) -> dict[str, Any]:
    """Cached JSON-mode validation per call (benchmarks/bench_validation.py's measurement)."""
    from benchmarks import bench_validation as bv

    row = bv.measure("order", bv.ORDER_SCHEMA, bv.ORDER_OUTPUT, calls, reps)
    return {"schema": "order (nested, 3 levels)", "cached_us": row["cached_us"], "uncached_us": row["uncached_us"],
            "ratio": row["ratio"]}
