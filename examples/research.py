# %% [markdown]
# # Research agent, offline
#
# The research agent turns a question into a cited markdown report: it plans sub-questions and
# search queries, searches them in parallel, picks sources, reads them, keeps the passages that
# bear on each sub-question, reflects on what is missing, and writes the report. Every `[n]` in the
# report points at a page it actually read.
#
# This notebook runs **offline** on the embedded default: the SmolLM2-135M model in-process and the
# offline Wikipedia index, whose articles are the "pages" the agent reads. With `api_key=`/`base_url=`
# and `search="auto"` the same call researches the live web (pages fetched by the SSRF-safe
# `PageFetcher`). SmolLM2 is tiny, so the budget keeps the run short.

# %%
import agent as studiolm
from agent import ResearchBudget

QUESTION = "Who directed 2001: A Space Odyssey, and in which year was that director born?"
BUDGET = ResearchBudget(max_sub_questions=2, max_reflections=0, max_seconds=300)


def show(step: studiolm.ResearchEvent) -> None:
    """Print each step as it happens."""
    detail = {
        "research.plan": lambda s: f"({s.planner}) " + " | ".join(s.sub_questions),
        "search.started": lambda s: repr(s.query),
        "search.completed": lambda s: f"{len(s.results)} results",
        "research.sources": lambda s: f"{len(s.urls)} to read",
        "page.read": lambda s: f"[{s.id}] {s.title}",
        "page.failed": lambda s: f"{s.url}: {s.error}",
        "research.report": lambda s: f"cites {list(s.cited)} ({s.writer})",
        "budget.exhausted": lambda s: s.reason,
    }.get(step.type, lambda s: "")
    print(f"step {step.type}: {detail(step)}")


# %% [markdown]
# ## Run it, with the steps streamed
#
# `research()` blocks until the report is written; `on_step` sees every step on the way (in async
# code, `async for step in studiolm.research_events(...)` streams them too).

# %%
report = studiolm.research(QUESTION, search="local", budget=BUDGET, on_step=show)

# %% [markdown]
# ## The report
#
# Markdown, with citations of the articles read and the numbered source list. `partial` says
# whether a budget ran out before the agent was done (and `reason` which one).

# %%
print(report.report)
print()
print("partial:", report.partial, report.reason)
for source in report.sources:
    print(f"source [{source.id}] {source.title} {source.url}")
for note in report.notes:
    print(f"note: {note.question} -> {[p.source_id for p in note.passages]}")
