"""``make bench`` / ``python -m benchmarks [NAME…]``: run benchmarks and write their reports to results/.

With no names, the fast set runs (``validation``, ``server``: a few minutes, no model needed). Name
any of the others to run them too; each can also run alone with its own options as
``python -m benchmarks.bench_<name> --help`` shows.
"""

from __future__ import annotations

import importlib
import sys
import time

#: name -> whether it runs by default (the model benchmarks take tens of minutes on 2 cores).
BENCHMARKS = {"validation": True, "server": True, "extraction": True, "grounded_qa": False, "jsonschemabench": False,
              "research": False}


def main(argv: list[str]) -> int:
    names = argv or [name for name, default in BENCHMARKS.items() if default]
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
