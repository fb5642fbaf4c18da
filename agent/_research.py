"""Research from Python: ``research()`` / ``aresearch()`` return a cited report, ``research_events()``
streams the steps. They configure the research graph (:func:`graphs.run_research`) the way
:class:`agent.Client` configures the chat graph: constructor-style arguments, then the environment,
then the embedded default (the local model and the offline Wikipedia index, whose documents are
then the "pages" the run reads)::

    import agent
    report = agent.research("How did the Danube and the Rhine shape European trade?", search="local")
    print(report.report)            # markdown with [n] citations and a numbered source list
    for source in report.sources:   # the pages actually read, in [n] order
        print(source.id, source.url)

Runs are checkpointed after every step: give ``checkpoint="runs.sqlite"`` (LangGraph's SQLite saver;
needs the ``research`` extra) or any LangGraph checkpointer (its Postgres saver for several
machines), and a run that crashed resumes from its last completed step with ``run_id=``.
``review_plan=True`` pauses after planning (``status="awaiting_review"``); call again with the same
``run_id`` and ``review_answer=`` (None accepts the plan, a list of sub-questions replaces it).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import os
import time
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from pathlib import Path
from typing import Any, TypedDict, Unpack

from agent._config import resolve_model_backend, resolve_search
from agent._exceptions import BadRequestError, UsageError
from agent.models import DEFAULT_MAX_RETRIES
from graphs import (
    ChatOutcome,
    ChatRequest,
    FallbackPages,
    IndexPages,
    ModelBackend,
    PageReader,
    ResearchBudget,
    ResearchDeps,
    ResearchEvent,
    ResearchReport,
    SearchDecision,
    Token,
    WebPages,
    research_serializer,
    run_research,
)
from tools import (
    CachedSearch,
    CorpusNotFoundError,
    DuckDuckGoSearch,
    LocalIndex,
    SearchBackend,
    SearchChain,
    SearchResult,
)

__all__ = ["RESEARCH_MODEL", "ResearchOptions", "aresearch", "research", "research_chat_events", "research_events"]

SQLITE_INSTALL_HINT = "install it with: pip install 'studiolm-agent[research]'"
#: The model id that routes a chat-completions request to the research graph (HTTP and SDK alike):
#: the last user message is the question, the steps stream as ``step`` chunks, the report is the content.
RESEARCH_MODEL = "studiolm-research"


class ResearchOptions(TypedDict, total=False):
    """The keyword options of :func:`research`, :func:`aresearch` and :func:`research_events`.

    * ``model`` - the model id (default: the backend's first model).
    * ``backend`` / ``api_key`` / ``base_url`` - the model, as for :class:`agent.Client`.
    * ``search`` - a :class:`SearchBackend` or ``"auto"``/``"web"``/``"local"``/``"none"``.
    * ``pages`` - where pages are read: a :class:`graphs.PageReader` (default: the local index's
      documents when searching a :class:`LocalIndex` or ``"local"``, else the web through an
      SSRF-safe :class:`tools.PageFetcher`).
    * ``budget`` - a :class:`ResearchBudget`.
    * ``checkpoint`` - an SQLite file path, or a LangGraph checkpointer; default: in memory.
    * ``run_id`` - resume (or name) a run; ``review_plan`` / ``review_answer`` - see the module doc.
    """

    model: str | None
    backend: ModelBackend | None
    api_key: str | None
    base_url: str | None
    search: SearchBackend | str | None
    pages: PageReader | None
    budget: ResearchBudget | None
    checkpoint: str | os.PathLike[str] | Any
    run_id: str | None
    review_plan: bool
    review_answer: Any


async def research_events(
    question: str | None = None, **options: Unpack[ResearchOptions]
) -> AsyncIterator[ResearchEvent | ResearchReport]:
    """Run (or resume) a research run: every step event as it happens, then the :class:`ResearchReport`."""
    _check_options(question, options)
    async with contextlib.AsyncExitStack() as stack:
        deps = await _deps(stack, options)
        checkpointer = await _checkpointer(stack, options.get("checkpoint"))
        run_id = options.get("run_id") or uuid.uuid4().hex
        async for item in run_research(question, deps, run_id=run_id, checkpointer=checkpointer,
                                       review_answer=options.get("review_answer")):
            yield item


async def aresearch(
    question: str | None = None, *, on_step: Callable[[ResearchEvent], None] | None = None,
    **options: Unpack[ResearchOptions],
) -> ResearchReport:
    """Research ``question`` and return the :class:`ResearchReport` (see :func:`research_events`);
    ``on_step`` is called with every step event as it happens."""
    report: ResearchReport | None = None
    async for item in research_events(question, **options):
        if isinstance(item, ResearchReport):
            report = item
        elif on_step is not None:
            on_step(item)
    assert report is not None, "run_research always ends with a report"
    return report


def research(
    question: str | None = None, *, on_step: Callable[[ResearchEvent], None] | None = None,
    **options: Unpack[ResearchOptions],
) -> ResearchReport:
    """Synchronous :func:`aresearch`. Inside a running event loop (a notebook) the run goes to a
    worker thread with its own loop, and this call blocks until it is done."""
    run = aresearch(question, on_step=on_step, **options)
    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return asyncio.run(run)
    with concurrent.futures.ThreadPoolExecutor(1, thread_name_prefix="studiolm-research") as pool:
        return pool.submit(asyncio.run, run).result()


async def research_chat_events(
    request: ChatRequest, backend: ModelBackend, search: SearchBackend | None
) -> AsyncGenerator[Any]:
    """A chat-completions request to :data:`RESEARCH_MODEL` as chat events: the research steps, the
    report as one token, then a :class:`ChatOutcome` whose sources are the pages read, in ``[n]`` order.

    The research model is the backend's first model; the sampling parameters do not apply.
    """
    question = next((m.content for m in reversed(request.messages) if m.role == "user"), "")
    report: ResearchReport | None = None
    pages = _pages(search if isinstance(search, LocalIndex) else _corpus_index())
    async for item in research_events(question, backend=backend, search=search or "none", pages=pages):
        if isinstance(item, ResearchReport):
            report = item
        else:
            yield item
    assert report is not None
    yield Token(text=report.report)
    yield _outcome(request, report)


def _outcome(request: ChatRequest, report: ResearchReport) -> ChatOutcome:
    queries = tuple(e.query for e in report.steps if getattr(e, "type", "") == "search.started")
    sources = tuple(SearchResult(s.title, s.url, s.snippet, "research") for s in report.sources)
    reason = "the research agent searched" + (f"; partial report: {report.reason}" if report.partial else "")
    return ChatOutcome(content=report.report, finish_reason="stop",
                       model=request.model, mode="force", sources=sources, images=(), queries=queries,
                       decision=SearchDecision(True, reason), search_errors=(), usage=report.usage,
                       model_calls=report.model_calls)


def _corpus_index() -> LocalIndex | None:
    try:
        return LocalIndex.from_corpus()
    except CorpusNotFoundError:
        return None


def _check_options(question: str | None, options: ResearchOptions) -> None:
    unknown = set(options) - set(ResearchOptions.__annotations__)
    if unknown:
        raise TypeError(f"research() got an unexpected keyword argument {sorted(unknown)[0]!r}")
    if question is not None and not isinstance(question, str):
        raise BadRequestError(f"must be a string, got {type(question).__name__}", param="question")
    if not (question and question.strip()) and not options.get("run_id"):
        raise BadRequestError("give a question to research (or the run_id of a run to resume)", param="question")
    if options.get("review_plan") and options.get("checkpoint") is None:
        raise BadRequestError("review_plan=True pauses the run: give a checkpoint= to resume it from",
                              param="checkpoint")
    budget = options.get("budget")
    if budget is not None and not isinstance(budget, ResearchBudget):
        raise BadRequestError(f"must be a ResearchBudget, got {type(budget).__name__}", param="budget")


async def _deps(stack: contextlib.AsyncExitStack, options: ResearchOptions) -> ResearchDeps:
    """Model, search and pages for one run; what this function created is closed when the run ends."""
    search, index = _search(options.get("search"))
    if search is not None and search is not options.get("search"):
        stack.push_async_callback(search.aclose)
    pages = options.get("pages") or _pages(index)
    backend = options.get("backend") or resolve_model_backend(
        backend=None, api_key=options.get("api_key"), base_url=options.get("base_url"), http_client=None,
        timeout=None, max_retries=DEFAULT_MAX_RETRIES)
    if backend is not options.get("backend"):
        stack.push_async_callback(backend.aclose)
    model = options.get("model") or next(iter(await backend.list_models()), "")
    await backend.check_model(model)
    budget = options.get("budget") or ResearchBudget()
    return ResearchDeps(model=backend, model_id=model, search=search, pages=pages, budget=budget,
                        deadline=time.monotonic() + budget.max_seconds, review_plan=bool(options.get("review_plan")))


def _search(search: SearchBackend | str | None) -> tuple[SearchBackend | None, LocalIndex | None]:
    """The search backend, and the local index among its backends (its documents are pages too)."""
    if isinstance(search, LocalIndex):
        return search, search
    if isinstance(search, SearchBackend):
        return search, None
    choice = search or os.environ.get("STUDIOLM_SEARCH") or "auto"
    if choice not in ("local", "auto"):
        return resolve_search(choice), None
    try:
        index = LocalIndex.from_corpus()
    except CorpusNotFoundError:
        if choice == "local":
            raise
        return resolve_search("web"), None
    if choice == "local":
        return index, index
    return CachedSearch(SearchChain([DuckDuckGoSearch(), index])), index  # as resolve_search("auto") builds it


def _pages(index: LocalIndex | None) -> PageReader:
    # The index first: a millisecond's lookup, and the only way to read its results offline.
    return FallbackPages([IndexPages(index), WebPages()]) if index is not None else WebPages()


async def _checkpointer(stack: contextlib.AsyncExitStack, checkpoint: Any) -> Any:
    """None (in memory), a LangGraph checkpointer as given, or LangGraph's SQLite saver on a file."""
    if checkpoint is None or not isinstance(checkpoint, str | os.PathLike):
        return checkpoint
    try:
        import aiosqlite
        from langgraph.checkpoint.sqlite.aio import AsyncSqliteSaver
    except ImportError as exc:
        raise UsageError(f"checkpoint= needs langgraph-checkpoint-sqlite; {SQLITE_INSTALL_HINT}") from exc
    path = await asyncio.to_thread(_prepared_path, checkpoint)
    conn = await aiosqlite.connect(str(path))
    stack.push_async_callback(conn.close)
    saver = AsyncSqliteSaver(conn, serde=research_serializer())
    await saver.setup()
    return saver


def _prepared_path(checkpoint: str | os.PathLike[str]) -> Path:
    path = Path(checkpoint).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    return path
