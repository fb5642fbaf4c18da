"""``make bench`` / ``python -m benchmarks [--quick] [OPTIONS]`` / ``python -m benchmarks NAME…``.

With no names (options only), ``stack`` runs: the whole stack side by side, written to
``benchmarks/RESULTS.md`` and ``benchmarks/results/*.json`` (about ten minutes on 2 cores;
``--quick`` for a smoke run; ``python -m benchmarks.bench_stack --help`` lists the options). Name
benchmarks to run those instead; each can also run alone with its own options as
``python -m benchmarks.bench_<name> --help`` shows.
"""

from __future__ import annotations

import importlib
import sys
import time

#: name -> whether it runs when no name is given (the model benchmarks take tens of minutes on 2 cores).
BENCHMARKS = {"stack": True, "validation": False, "server": False, "extraction": False, "grounded_qa": False,
              "jsonschemabench": False, "research": False}


def main(argv: list[str]) -> int:
    if not argv or argv[0].startswith("-"):
        from benchmarks import bench_stack

        return bench_stack.main(argv)
    names = argv
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown:
        print(f"unknown benchmark {unknown[0]!r}; choose from {', '.join(BENCHMARKS)}", file=sys.stderr)
        return 2
    for name in names:
        began = time.perf_counter()
        print(f"== {name}", flush=True)
        module = importlib.import_module(f"benchmarks.bench_{name}")
        status = module.main([])
        print(f"== {name}: done in {time.perf_counter() - began:.0f} s", flush=True)
        if status:
            return int(status)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
