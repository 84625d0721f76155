# Two commands do everything on a fresh machine with Python 3.11+ and make:
#   make demo   - install into .venv, then snapshot the built-in demo gallery
#   make test   - install into .venv, then lint, type-check and run the whole test suite
# make unit, make flow and make e2e run one tier of it.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test lint unit flow e2e bench lock clean

$(STAMP): requirements.lock pyproject.toml
	$(PYTHON) -m venv $(VENV)
	# pip 23 mis-resolves pinned packages asked for with extras (httpx[http2]) under --require-hashes
	$(BIN)/pip install --quiet --disable-pip-version-check pip==26.3
	$(BIN)/pip install --quiet --disable-pip-version-check --require-hashes -r requirements.lock
	$(BIN)/pip install --quiet --disable-pip-version-check --no-deps --no-build-isolation -e .
	touch $@

install: $(STAMP)

demo: $(STAMP)
	$(BIN)/gallery-snapshot demo

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: lint
	$(BIN)/pytest

# One tier of the suite each (the marker comes from the test's folder: tests/conftest.py).
unit: $(STAMP)
	$(BIN)/pytest -m unit

flow: $(STAMP)
	$(BIN)/pytest -m flow

e2e: $(STAMP)
	$(BIN)/pytest -m e2e

bench: $(STAMP)
	$(BIN)/python -m benchmarks.run $(BENCH_ARGS)

# Re-pin every dependency (needs uv: pip install uv).
lock:
	uv pip compile pyproject.toml --extra dev --universal --python-version 3.11 \
		--generate-hashes -o requirements.lock

clean:
	rm -rf $(VENV) demo-output .pytest_cache .mypy_cache .ruff_cache
