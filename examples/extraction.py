# %% [markdown]
# # Structured extraction: documents in, schema-valid records out
#
# `studiolm.extract(inputs, schema, ...)` turns each document into one JSON record that validates
# against your schema (a pydantic model or a JSON Schema), with its provenance: the chunks it was read
# from, the model, the attempts, and a supporting quote per field where the model gave one. Inputs
# that never validate go to an errors file with every attempt's raw output; each input ends up in
# exactly one of the two files, and `resume=True` continues an interrupted run.
#
# This notebook runs **offline** on the embedded default (SmolLM2-135M-Instruct through llama.cpp).
# It writes two dozen short texts about people, keeps the true values beside them, extracts a record
# from each, and reports the field accuracy. The same code drives any OpenAI-compatible endpoint
# (`studiolm.Client(api_key=..., base_url=...)`), where a larger model does much better.

# %%
import json
import tempfile
from pathlib import Path

from pydantic import BaseModel, Field

import agent as studiolm


class Person(BaseModel):
    """One person mentioned in a short text."""

    name: str = Field(description="the person's full name")
    age: int = Field(description="age in years")
    city: str = Field(description="the city the person lives in or comes from")


# %% [markdown]
# ## The documents, and the truth beside them
#
# Four phrasings, so the answer is not always in the same place of the sentence.

# %%
NAMES = ["Ada Lovelace", "Alan Turing", "Grace Hopper", "Katherine Johnson", "Tim Berners", "Hedy Lamarr",
         "Claude Shannon", "Barbara Liskov", "Edsger Dijkstra", "Frances Allen", "John McCarthy", "Radia Perlman"]
CITIES = ["London", "Manchester", "New York", "Paris", "Geneva", "Vienna", "Boston", "Madrid", "Lisbon", "Oslo",
          "Dublin", "Prague"]
TEMPLATES = [
    "{name} is {age} years old and lives in {city}.",
    "Meet {name}, a {age}-year-old engineer from {city}.",
    "Born and raised in {city}, {name} turned {age} this spring.",
    "Our new neighbour, {name} ({age}), moved here from {city} last month.",
]

documents, truth = [], {}
for n in range(24):
    person = {"name": NAMES[n % 12], "age": 21 + (n * 7) % 60, "city": CITIES[(n * 5) % 12]}
    doc_id = f"doc-{n:02}"
    documents.append({"id": doc_id, "text": TEMPLATES[n % 4].format(**person)})
    truth[doc_id] = person
print(len(documents), "documents, e.g.:", documents[0]["text"], "|", documents[3]["text"])

# %% [markdown]
# ## Extract
#
# `output=` gets one JSON line per record, `errors=` one per failure. `progress=True` shows a
# progress bar (a widget in Jupyter). The embedded model decodes one document at a time, so more
# concurrency would not help here; against an HTTP endpoint raise `concurrency=`. The example runs
# the tiny tier (SmolLM2-135M) so it finishes in well under a minute; leave `model=` out for the
# default tier.

# %%
workdir = Path(tempfile.mkdtemp(prefix="extraction-"))
client = studiolm.Client(search="none")
report = studiolm.extract(documents, Person, client=client, model="smollm2-135m-instruct",
                          output=workdir / "people.jsonl", errors=workdir / "people.errors.jsonl",
                          concurrency=1, progress=True)
print(report.summary)

# %% [markdown]
# ## The records, and how right they are

# %%
FIELDS = ["name", "age", "city"]


def same(field: str, got: object, expected: object) -> bool:
    if field == "age":
        return got == expected
    return isinstance(got, str) and got.strip().casefold() == str(expected).casefold()


rows = {json.loads(line)["id"]: json.loads(line) for line in (workdir / "people.jsonl").read_text().splitlines()}
correct = dict.fromkeys(FIELDS, 0)
print(f"{'id':7} {'name':20} {'age':>4} {'city':12} ok?")
for doc_id, expected in truth.items():
    record = rows[doc_id]["record"] if doc_id in rows else {}
    marks = ""
    for field in FIELDS:
        hit = same(field, record.get(field), expected[field])
        correct[field] += hit
        marks += "✓" if hit else "✗"
    print(f"{doc_id:7} {str(record.get('name', '—'))[:20]:20} {record.get('age', '—')!s:>4} "
          f"{str(record.get('city', '—'))[:12]:12} {marks}")
accuracy = {field: correct[field] / len(truth) for field in FIELDS}
overall = sum(correct.values()) / (len(truth) * len(FIELDS))
print("field accuracy:", ", ".join(f"{f} {a:.0%}" for f, a in accuracy.items()), f"| overall {overall:.0%}")

# %% [markdown]
# ## Provenance
#
# Each line holds the record and where it came from: the chunks (with their character spans), the
# model, the attempts it took, and the quotes the model gave that were found in the text (quotes not
# found there are listed as unverified and dropped). Failures keep every attempt's raw output.

# %%
first = next(iter(rows.values()))
print(json.dumps(first["provenance"])[:600])
failures = [json.loads(line) for line in (workdir / "people.errors.jsonl").read_text().splitlines()]
for failure in failures[:3]:
    print("failed:", failure["id"], failure["reason"], "| last output:", failure["attempts"][-1]["output"][:80]
          if failure["attempts"] else "")
client.close()
