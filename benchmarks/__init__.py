"""Performance harness: plain scripts, run as `.venv/bin/python -m benchmarks.<name>`."""
