"""JSON-mode validation cost per call: compiled-schema cache vs compiling on every call, as a ratio.

    .venv/bin/python -m benchmarks.bench_validation [--calls 200] [--repeats 5] [--write PATH]

One "call" is what the chat graph does for one JSON-mode request and one model output:
:func:`tools.compile_schema` (metaschema check, reference resolution, probe, validator build) and
:meth:`CompiledSchema.check_text` on the output. *cached* goes through the cache as the product does
(after one warm-up call, every call is a cache hit: canonical JSON text + lookup); *uncached* calls
the compiling function underneath the cache every time, which is what validation would cost
without it. Both run in the same process, interleaved, and the median of ``--repeats`` runs is
reported. Schemas: a small nested one (the extraction example of the tests) and, when
``../shared/jsonschemabench-sample`` is present, the largest schema of its Kubernetes set.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks._report import publish
from tools import compile_schema
from tools._schema import _compile_cached, canonical_schema_text

SAMPLE_DIR = Path(__file__).resolve().parents[2] / "shared" / "jsonschemabench-sample"

ORDER_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "customer": {"type": "string"},
        "status": {"type": "string", "enum": ["pending", "shipped", "delivered"]},
        "items": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "properties": {
                    "product": {"type": "string"},
                    "quantity": {"type": "integer", "minimum": 1},
                    "size": {"type": "string", "enum": ["S", "M", "L"]},
                },
                "required": ["product", "quantity", "size"],
                "additionalProperties": False,
            },
        },
    },
    "required": ["customer", "status", "items"],
    "additionalProperties": False,
}
ORDER_OUTPUT = json.dumps({
    "customer": "Maria Lopez", "status": "shipped",
    "items": [{"product": "T-shirt", "quantity": 2, "size": "M"}, {"product": "Hoodie", "quantity": 1, "size": "L"}],
})


def cached_call(schema: Any, output: str) -> None:
    """One JSON-mode call as the product makes it."""
    compile_schema(schema).check_text(output)


def uncached_call(schema: Any, output: str) -> None:
    """The same call with the schema compiled afresh (the function under the cache)."""
    _compile_cached.__wrapped__(canonical_schema_text(schema)).check_text(output)


def per_call_seconds(fn: Callable[[Any, str], None], schema: Any, output: str, calls: int) -> float:
    """Mean seconds per call over ``calls`` calls."""
    start = time.perf_counter()
    for _ in range(calls):
        fn(schema, output)
    return (time.perf_counter() - start) / calls


def measure(name: str, schema: Any, output: str, calls: int, repeats: int) -> dict[str, Any]:
    """Median cached and uncached cost per call for one schema, interleaved run by run."""
    cached_call(schema, output)  # warm the cache (and imports) once
    cached, uncached = [], []
    for _ in range(repeats):
        cached.append(per_call_seconds(cached_call, schema, output, calls))
        uncached.append(per_call_seconds(uncached_call, schema, output, max(calls // 10, 5)))
    c, u = statistics.median(cached), statistics.median(uncached)
    return {"schema": name, "chars": len(canonical_schema_text(schema)), "cached_us": c * 1e6,
            "uncached_us": u * 1e6, "ratio": u / c}


def schemas() -> list[tuple[str, Any, str]]:
    """(name, schema, model output) to measure."""
    found = [("order (nested, 3 levels)", ORDER_SCHEMA, ORDER_OUTPUT)]
    kubernetes = sorted((SAMPLE_DIR / "Kubernetes").glob("*.json"), key=lambda p: p.stat().st_size)
    if kubernetes:
        path = kubernetes[-1]
        found.append((f"Kubernetes/{path.name}", json.loads(path.read_text()), "{}"))
    return found


def report(rows: list[dict[str, Any]], command: str) -> str:
    """The results as a markdown table."""
    lines = [
        "# JSON-mode validation cost per call: cached vs uncached compile",
        "",
        f"Command: `{command}`",
        "",
        "| schema | canonical chars | cached µs/call | uncached µs/call | uncached / cached |",
        "|---|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['schema']} | {r['chars']} | {r['cached_us']:.1f} | {r['uncached_us']:.1f} | {r['ratio']:.1f}x |"
              for r in rows]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and print (and optionally write) the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="cached calls per run (uncached: a tenth)")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--write", type=Path, help="also write the markdown table here")
    args = parser.parse_args(argv)
    rows = [measure(name, schema, output, args.calls, args.repeats) for name, schema, output in schemas()]
    text = report(rows, "python -m benchmarks.bench_validation " + " ".join(argv if argv is not None else sys.argv[1:]))
    publish(text, args.write)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
