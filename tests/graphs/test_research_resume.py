"""Research runs survive: checkpointed to SQLite after every step, resumed by run id (issue 14)."""

from __future__ import annotations

from pathlib import Path

import pytest

import agent
from agent import Page, PageReader, ResearchReport, SearchResult
from tests.fakes import FakeSearch
from tests.graphs.test_research import QUESTION, TWO_PARTS, scripted

RESULTS = [SearchResult("Danube", "https://a.example/danube", "About the Danube.", "fake"),
           SearchResult("Rhine", "https://b.example/rhine", "About the Rhine.", "fake")]
TEXTS = {"https://a.example/danube": "The Danube flows east through ten countries into the Black Sea.",
         "https://b.example/rhine": "The Rhine flows from the Swiss Alps north to the North Sea."}


class Crash(BaseException):
    """Stands for the process dying: nothing in the graph catches it."""


class FlakyPages(PageReader):
    """Serves fixed texts; the first ``crashes`` reads kill the run."""

    def __init__(self, crashes: int = 0) -> None:
        self.crashes = crashes
        self.reads: list[str] = []

    async def read(self, url: str) -> Page:
        self.reads.append(url)
        if self.crashes:
            self.crashes -= 1
            raise Crash(url)
        return Page(url=url, status=200, content_type="text/plain", title=url, text=TEXTS[url], size=1)


async def test_a_crashed_run_resumes_from_its_last_completed_step(tmp_path: Path) -> None:
    checkpoint = tmp_path / "runs.sqlite"
    search, pages = FakeSearch(RESULTS), FlakyPages(crashes=1)
    model = scripted(TWO_PARTS, "The Danube [1] and the Rhine [2].")
    options = {"backend": model, "search": search, "pages": pages, "checkpoint": checkpoint, "run_id": "run-1"}
    with pytest.raises(Crash):
        await agent.aresearch(QUESTION, **options)  # type: ignore[arg-type]
    planned, searched = len(model.requests), list(search.queries)
    assert planned == 1 and len(searched) == 3  # planning and the searches were done before the crash

    report = await agent.aresearch(None, **options)  # type: ignore[arg-type]
    assert report.status == "done" and not report.partial
    assert len(model.requests) == planned + 2  # reflection and report only: the plan was not asked again
    assert search.queries == searched  # no search ran twice
    assert [s.url for s in report.sources] == list(TEXTS)
    assert report.steps[0].type == "page.read"  # the resumed run started at the read step

    again = await agent.aresearch(None, **options)  # type: ignore[arg-type]
    assert again.report == report.report and again.steps == ()  # finished: the stored report, nothing rerun


async def test_plan_review_pauses_and_resumes_with_the_edited_plan(tmp_path: Path) -> None:
    checkpoint = tmp_path / "runs.sqlite"
    search = FakeSearch(RESULTS)
    options = {"backend": scripted(TWO_PARTS, "Rhine [1]."), "search": search, "pages": FlakyPages(),
               "checkpoint": checkpoint, "run_id": "review-1", "review_plan": True}
    paused = await agent.aresearch(QUESTION, **options)  # type: ignore[arg-type]
    assert paused.status == "awaiting_review" and not paused.partial
    assert [s.question for s in paused.plan] == ["Where does the Danube flow?", "Where does the Rhine flow?"]
    assert search.queries == []  # nothing searched before the human said so
    assert paused.steps[-1].type == "research.review" and paused.steps[-1].run_id == "review-1"

    done = await agent.aresearch(None, **options, review_answer=["Where does the Rhine rise?"])  # type: ignore[arg-type]
    assert isinstance(done, ResearchReport) and done.status == "done"
    assert search.queries == ["Where does the Rhine rise?"]
    assert done.plan[0].question == "Where does the Rhine rise?"
    assert any(e.type == "research.plan" and e.planner == "human" for e in done.steps)
    assert not any(e.type == "research.review" for e in done.steps)  # announced once, when it paused


async def test_accepting_the_plan_runs_it(tmp_path: Path) -> None:
    search = FakeSearch(RESULTS)
    options = {"backend": scripted(TWO_PARTS, "Both [1][2]."), "search": search, "pages": FlakyPages(),
               "checkpoint": str(tmp_path / "runs.sqlite"), "run_id": "review-2", "review_plan": True}
    await agent.aresearch(QUESTION, **options)  # type: ignore[arg-type]
    done = await agent.aresearch(None, **options)  # type: ignore[arg-type]
    assert sorted(search.queries) == ["Danube course", QUESTION, "Rhine course"]
    assert done.status == "done" and len(done.sources) == 2
