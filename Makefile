# streamrec: `make demo` runs the pipeline end to end locally; `make test` runs the whole suite.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-unit test-integration bench lint dev-up dev-down clean

$(STAMP): pyproject.toml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON)"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh

test: $(STAMP)
	bash scripts/test.sh

test-unit: $(STAMP)
	$(BIN)/pytest -q -m "not integration" tests

test-integration: $(STAMP)
	$(BIN)/pytest -q -m integration tests

bench: $(STAMP)
	bash scripts/bench.sh $(ARGS)

lint: $(STAMP)
	$(BIN)/ruff check .

dev-up: $(STAMP)
	$(BIN)/streamrec dev up

dev-down: $(STAMP)
	$(BIN)/streamrec dev down

clean:
	rm -rf $(VENV) .streamrec .pytest_cache reports test-artifacts
