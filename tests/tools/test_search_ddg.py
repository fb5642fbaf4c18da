"""DuckDuckGoSearch over the real ddgs package, its HTTP answered by canned pages (see conftest)."""

from __future__ import annotations

import json

import primp
import pytest

from tests.tools.ddgs_fake import Canned, FakeWeb
from tools._ddg import (
    BACKOFF_INITIAL_SECONDS,
    BACKOFF_JITTER,
    CIRCUIT_COOLDOWN_SECONDS,
    CIRCUIT_FAILURE_THRESHOLD,
    RATE_LIMIT_RETRIES,
    SNIPPET_MAX_CHARS,
    CircuitBreaker,
    DuckDuckGoSearch,
)
from tools._exceptions import SearchRateLimitedError, SearchUnavailableError, ToolsUsageError
from tools._search import ImageResult, SearchFallback

DDG_HTML = "https://html.duckduckgo.com/html/"
BRAVE = "https://search.brave.com/search"

LONG_BODY = "Guido van Rossum began working on <b>Python</b> in the late 1980s as a successor to ABC. " * 12


def _ddg_result(url: str, title: str, snippet: str, extra_class: str = "web-result") -> str:
    return f"""
  <div class="result results_links results_links_deep {extra_class} ">
    <div class="links_main links_deep result__body">
      <h2 class="result__title">
        <a rel="nofollow" class="result__a" href="{url}">{title}</a>
      </h2>
      <div class="result__extras">
        <div class="result__extras__url">
          <span class="result__icon">
            <a rel="nofollow" href="{url}"><img class="result__icon__img" width="16" height="16" alt=""
               src="//external-content.duckduckgo.com/ip3/example.ico" name="i15" /></a>
          </span>
          <a class="result__url" href="{url}">{url.rsplit("//", maxsplit=1)[-1]}</a>
        </div>
      </div>
      <a class="result__snippet" href="{url}">{snippet}</a>
      <div class="clear"></div>
    </div>
  </div>"""


# The shape of https://html.duckduckgo.com/html/ (the endpoint ddgs' "duckduckgo" text engine POSTs to):
# an ad (y.js link, which ddgs drops), organic results, and a damaged result without any link.
DDG_RESULTS_PAGE = f"""<!DOCTYPE html PUBLIC "-//W3C//DTD XHTML 1.0 Transitional//EN"
  "http://www.w3.org/TR/xhtml1/DTD/xhtml1-transitional.dtd">
<html xmlns="http://www.w3.org/1999/xhtml">
<head>
  <meta http-equiv="content-type" content="text/html; charset=UTF-8" />
  <title>python programming at DuckDuckGo</title>
  <link rel="stylesheet" href="/dist/h.css" type="text/css" />
</head>
<body class="body--html">
  <div class="header__form">
    <form id="search_form" name="x" class="header__form" action="/html/" method="post">
      <input name="q" autocomplete="off" class="search__input" id="search_form_input_homepage"
             type="text" value="python programming" />
    </form>
  </div>
  <div>
  <div class="serp__results">
  <div id="links" class="results">
  {_ddg_result("https://duckduckgo.com/y.js?ad_domain=learnpy.example&amp;ad_provider=bingv7aa&amp;u3=x",
               "Learn Python Fast", "Sponsored course.", "result--ad")}
  {_ddg_result("https://www.python.org/", "Welcome to Python.org",
               "The official home of the <b>Python</b> Programming Language.")}
  {_ddg_result("https://en.wikipedia.org/wiki/Python_(programming_language)",
               "Python (programming language) - Wikipedia", LONG_BODY)}
  {_ddg_result("https://docs.python.org/3/tutorial/", "The Python Tutorial &#8212; Python 3 documentation",
               "Python is an easy to learn, powerful <b>programming</b> language.")}
  <div class="result results_links web-result">
    <div class="links_main links_deep result__body"><h2 class="result__title">Broken result</h2></div>
  </div>
  </div>
  </div>
  </div>
</body>
</html>"""

# What DuckDuckGo answers when it rate limits the HTML endpoint: HTTP 202 and a bot challenge.
DDG_RATE_LIMITED = Canned(202, '<html><body><div class="anomaly-modal__title">Unfortunately, bots use '
                               "DuckDuckGo too.</div></body></html>")

# The shape of https://search.brave.com/search results (ddgs' "brave" engine).
BRAVE_PAGE = """<html><body><main><div id="results">
<div class="snippet svelte-jmfu5f" data-pos="0" data-type="web">
  <div class="result-wrapper"><div class="result-content">
    <a href="https://www.python.org/about/" target="_self" class="l1">
      <div class="title search-snippet-title line-clamp-1" title="About Python">About Python</div>
    </a>
    <div class="generic-snippet"><div class="content desktop-default-regular t-primary">
      Python is powerful... and fast; plays well with others; runs everywhere.</div></div>
  </div></div>
</div>
<div class="snippet svelte-jmfu5f" data-pos="1" data-type="web">
  <div class="result-wrapper"><div class="result-content">
    <a href="https://realpython.com/" target="_self" class="l1">
      <div class="title search-snippet-title line-clamp-1" title="Real Python">Real Python Tutorials</div>
    </a>
    <div class="generic-snippet"><div class="content desktop-default-regular t-primary">
      Learn Python online: tutorials, courses and quizzes.</div></div>
  </div></div>
</div>
</div></main></body></html>"""

# DuckDuckGo image search: a page carrying the vqd token, then the i.js JSON.
DDG_VQD_PAGE = Canned(200, '<html><script>DDG.deep.initialize("/d.js?q=monolith&amp;t=D&amp;l=us-en&amp;'
                           'vqd=4-141907937016183584729413937640585389787");vqd="4-14190793701618358472941393'
                           '7640585389787"</script></html>')
DDG_IMAGES_JSON = json.dumps(
    {
        "ads": None,
        "next": "i.js?q=monolith&o=json&p=1&s=100&u=bing&f=,,,,,&l=us-en",
        "query": "monolith",
        "queryEncoded": "monolith",
        "response_type": "places",
        "results": [
            {
                "height": 1080,
                "image": "https://upload.wikimedia.org/wikipedia/commons/a/a4/Monolith.jpg",
                "image_token": "5e0b6b5e",
                "source": "Bing",
                "thumbnail": "https://tse1.mm.bing.net/th?id=OIP.abc&pid=Api",
                "thumbnail_token": "9f1c",
                "title": "The Monolith - 2001: A Space Odyssey",
                "url": "https://en.wikipedia.org/wiki/Monolith_(Space_Odyssey)",
                "width": 1920,
            },
            {"title": "an entry without an image URL", "url": "https://example.org/x", "width": 10},
            {
                "height": "n/a",
                "image": "https://example.org/img/slab.png",
                "thumbnail": "",
                "title": "Slab",
                "url": "",
                "width": "640",
            },
        ],
        "vqd": {"monolith": "4-141907937016183584729413937640585389787"},
    }
)


class Sleeps:
    """Records backoff sleeps instead of sleeping."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, delay: float) -> None:
        self.delays.append(delay)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def sleeps() -> Sleeps:
    return Sleeps()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def ddg(sleeps: Sleeps, clock: Clock) -> DuckDuckGoSearch:
    return DuckDuckGoSearch(sleep=sleeps, circuit_breaker=CircuitBreaker(clock=clock))


def dns_error(host: str = "html.duckduckgo.com") -> primp.DNSError:
    return primp.DNSError(
        f"error sending request for url (https://{host}/) > error resolving DNS > DNS error: no records "
        f'found for Query {{ name: Name("{host}."), query_type: A, query_class: IN }}'
    )


async def test_text_results_are_parsed_from_the_duckduckgo_html_page(
    fake_web: FakeWeb, ddg: DuckDuckGoSearch
) -> None:
    fake_web.route("POST", DDG_HTML, Canned(200, DDG_RESULTS_PAGE))

    response = await ddg.search("python programming", max_results=10)

    assert fake_web.requests[0].url == DDG_HTML
    assert fake_web.requests[0].data["q"] == "python programming"
    assert response.backend == "duckduckgo" and response.fallbacks == () and not response.cached
    by_url = {r.url: r for r in response.results}
    # the ad (y.js) and the result without a link are gone
    assert set(by_url) == {
        "https://www.python.org/",
        "https://en.wikipedia.org/wiki/Python_(programming_language)",
        "https://docs.python.org/3/tutorial/",
    }
    assert all(r.source == "duckduckgo" for r in response.results)
    home = by_url["https://www.python.org/"]
    assert home.title == "Welcome to Python.org"
    assert home.snippet == "The official home of the Python Programming Language."
    tutorial = by_url["https://docs.python.org/3/tutorial/"]
    assert tutorial.title == "The Python Tutorial — Python 3 documentation"
    long = by_url["https://en.wikipedia.org/wiki/Python_(programming_language)"].snippet
    assert len(long) <= SNIPPET_MAX_CHARS and long.endswith("…")
    assert long.startswith("Guido van Rossum began working on Python in the late 1980s")


async def test_max_results_limits_the_results(fake_web: FakeWeb, ddg: DuckDuckGoSearch) -> None:
    fake_web.route("POST", DDG_HTML, Canned(200, DDG_RESULTS_PAGE))

    response = await ddg.search("python programming", max_results=2)

    assert len(response.results) == 2


async def test_image_results_map_ddgs_dicts_and_skip_entries_without_an_image(
    fake_web: FakeWeb, ddg: DuckDuckGoSearch
) -> None:
    fake_web.route("GET", "https://duckduckgo.com", DDG_VQD_PAGE)
    fake_web.route("GET", "https://duckduckgo.com/i.js", Canned(200, DDG_IMAGES_JSON))

    response = await ddg.search_images("monolith", max_results=5)

    assert fake_web.urls() == ["https://duckduckgo.com", "https://duckduckgo.com/i.js"]
    assert fake_web.requests[1].params["vqd"] == "4-141907937016183584729413937640585389787"
    assert response.backend == "duckduckgo"
    assert response.results == (
        ImageResult(
            image_url="https://upload.wikimedia.org/wikipedia/commons/a/a4/Monolith.jpg",
            thumbnail_url="https://tse1.mm.bing.net/th?id=OIP.abc&pid=Api",
            source_url="https://en.wikipedia.org/wiki/Monolith_(Space_Odyssey)",
            title="The Monolith - 2001: A Space Odyssey",
            width=1920,
            height=1080,
        ),
        # odd entry: no thumbnail or page URL falls back to the image itself, "n/a" is no height
        ImageResult(
            image_url="https://example.org/img/slab.png",
            thumbnail_url="https://example.org/img/slab.png",
            source_url="https://example.org/img/slab.png",
            title="Slab",
            width=640,
            height=None,
        ),
    )


async def test_no_results_found_counts_as_rate_limited_and_is_retried_with_backoff(
    fake_web: FakeWeb, ddg: DuckDuckGoSearch, sleeps: Sleeps
) -> None:
    # Every engine answers non-200: ddgs reports it as a bare "No results found."
    fake_web.route("POST", DDG_HTML, DDG_RATE_LIMITED)

    with pytest.raises(SearchRateLimitedError) as caught:
        await ddg.search("python programming")

    assert "No results found" in str(caught.value)
    assert caught.value.backend == "duckduckgo" and caught.value.query == "python programming"
    assert caught.value.retry_after is not None and caught.value.retry_after > 0
    assert len(sleeps.delays) == RATE_LIMIT_RETRIES
    assert fake_web.urls().count(DDG_HTML) == RATE_LIMIT_RETRIES + 1
    # exponential, with jitter that only ever shortens the wait
    for retry, delay in enumerate(sleeps.delays):
        full = BACKOFF_INITIAL_SECONDS * 2**retry
        assert full * (1 - BACKOFF_JITTER) <= delay <= full


async def test_rate_limit_that_clears_up_succeeds_after_retries(
    fake_web: FakeWeb, ddg: DuckDuckGoSearch, sleeps: Sleeps
) -> None:
    fake_web.route("POST", DDG_HTML, DDG_RATE_LIMITED, DDG_RATE_LIMITED, Canned(200, DDG_RESULTS_PAGE))

    response = await ddg.search("python programming")

    assert len(sleeps.delays) == 2
    assert len(response.results) == 3
    assert SearchFallback("ddgs:duckduckgo", "No results found.") in response.fallbacks


async def test_timeouts_are_retried_then_reported_as_rate_limited(
    fake_web: FakeWeb, ddg: DuckDuckGoSearch, sleeps: Sleeps
) -> None:
    fake_web.default = primp.TimeoutError("error sending request for url (https://html.duckduckgo.com/html/)"
                                          " > operation timed out")

    with pytest.raises(SearchRateLimitedError):
        await ddg.search("python")

    assert len(sleeps.delays) == RATE_LIMIT_RETRIES


async def test_falls_back_to_the_next_ddgs_backend_when_duckduckgo_rate_limits(
    fake_web: FakeWeb, ddg: DuckDuckGoSearch, sleeps: Sleeps
) -> None:
    fake_web.route("POST", DDG_HTML, DDG_RATE_LIMITED)
    fake_web.route("GET", BRAVE, Canned(200, BRAVE_PAGE))

    response = await ddg.search("python")

    assert sleeps.delays == []  # a fallback is not a retry
    assert fake_web.urls()[0] == DDG_HTML and BRAVE in fake_web.urls()
    assert [(r.title, r.url, r.source) for r in response.results] == [
        ("About Python", "https://www.python.org/about/", "duckduckgo"),
        ("Real Python Tutorials", "https://realpython.com/", "duckduckgo"),
    ]
    assert response.results[1].snippet == "Learn Python online: tutorials, courses and quizzes."
    assert response.fallbacks == (SearchFallback("ddgs:duckduckgo", "No results found."),)


async def test_dns_failure_is_unavailable_at_once_without_retries(
    fake_web: FakeWeb, ddg: DuckDuckGoSearch, sleeps: Sleeps
) -> None:
    fake_web.default = dns_error()

    with pytest.raises(SearchUnavailableError) as caught:
        await ddg.search("python")

    assert not isinstance(caught.value, SearchRateLimitedError)
    assert "DNS error" in str(caught.value)
    assert sleeps.delays == []
    # each backend asked exactly once: no retry round
    assert fake_web.urls().count(DDG_HTML) == 1
    assert len(fake_web.urls()) == len(set(fake_web.urls()))


async def test_connection_refused_is_unavailable(
    fake_web: FakeWeb, ddg: DuckDuckGoSearch, sleeps: Sleeps
) -> None:
    fake_web.default = primp.ConnectError(
        "error sending request for url (https://html.duckduckgo.com/html/) > client error (Connect) > "
        "tcp connect error > Connection refused (os error 111)"
    )

    with pytest.raises(SearchUnavailableError):
        await ddg.search_images("python")

    assert sleeps.delays == []


async def test_circuit_opens_after_consecutive_failures_and_closes_after_a_success(
    fake_web: FakeWeb, ddg: DuckDuckGoSearch, clock: Clock
) -> None:
    fake_web.default = dns_error()
    for _ in range(CIRCUIT_FAILURE_THRESHOLD):
        with pytest.raises(SearchUnavailableError):
            await ddg.search("python")
    sent = len(fake_web.requests)

    # open: fails fast, nothing is sent
    with pytest.raises(SearchUnavailableError, match="circuit open"):
        await ddg.search("python")
    clock.now += CIRCUIT_COOLDOWN_SECONDS - 1
    with pytest.raises(SearchUnavailableError, match="circuit open"):
        await ddg.search_images("python")
    assert len(fake_web.requests) == sent

    # half-open after the cooldown: one trial goes out; its failure opens the circuit again
    clock.now += 1
    with pytest.raises(SearchUnavailableError) as trial:
        await ddg.search("python")
    assert "circuit open" not in str(trial.value)
    assert len(fake_web.requests) > sent
    with pytest.raises(SearchUnavailableError, match="circuit open"):
        await ddg.search("python")

    # the network is back: the next trial succeeds and the circuit closes
    clock.now += CIRCUIT_COOLDOWN_SECONDS
    fake_web.route("POST", DDG_HTML, Canned(200, DDG_RESULTS_PAGE))
    assert (await ddg.search("python")).results
    fake_web.routes.clear()
    with pytest.raises(SearchUnavailableError) as after:  # one failure no longer opens it
        await ddg.search("python")
    assert "circuit open" not in str(after.value)
    with pytest.raises(SearchUnavailableError) as again:
        await ddg.search("python")
    assert "circuit open" not in str(again.value)


async def test_empty_query_sends_nothing(fake_web: FakeWeb, ddg: DuckDuckGoSearch) -> None:
    assert (await ddg.search("   ")).results == ()
    assert (await ddg.search_images("")).results == ()
    assert fake_web.requests == []


@pytest.mark.parametrize("bad", [0, -1, True, 2.5])
async def test_bad_max_results_is_a_usage_error(
    fake_web: FakeWeb, ddg: DuckDuckGoSearch, bad: object
) -> None:
    with pytest.raises(ToolsUsageError, match="max_results"):
        await ddg.search("python", max_results=bad)  # type: ignore[arg-type]
    assert fake_web.requests == []
