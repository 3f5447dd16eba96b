# streamrec: `make demo` runs the pipeline end to end locally; `make test` runs the whole suite.
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install demo test test-faults test-unit test-integration bench evaluate lint dev-up dev-down clean

# Python packages, Apache Kafka's jars through Maven (skipped, with a message, without java or mvn: the
# stack and the tests then fall back to Tansu) and Debian's redis-server when missing.
$(STAMP): pyproject.toml deploy/kafka/pom.xml
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "need $(PYTHON)"; exit 1; }
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e ".[dev]"
	bash scripts/install-kafka.sh
	bash scripts/install-redis.sh
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	bash scripts/demo.sh

test: $(STAMP)
	bash scripts/test.sh

# The fault suite at full size (more events, several kills in a row); `make test` runs it at scale 1.
test-faults: $(STAMP)
	bash scripts/install-redis.sh
	STREAMREC_FAULT_SCALE=$${STREAMREC_FAULT_SCALE:-4} $(BIN)/pytest -q -p no:cacheprovider -rA tests/faults

test-unit: $(STAMP)
	$(BIN)/pytest -q -m "not integration" tests

test-integration: $(STAMP)
	$(BIN)/pytest -q -m integration tests

bench: $(STAMP)
	bash scripts/bench.sh $(ARGS)

# Offline figures (minutes each on 2 cores; tables and plots under reports/): ASOS, simulated, serving cost,
# the SR-GNN session benchmarks and a replay of REES46 through Kafka.
evaluate: $(STAMP)
	$(BIN)/streamrec evaluate asos --out reports/asos
	$(BIN)/streamrec evaluate sim --out reports/sim
	$(BIN)/streamrec bench serving --out reports
	$(BIN)/streamrec evaluate srgnn -d diginetica
	$(BIN)/streamrec dev up
	$(BIN)/streamrec replay --file ../shared/data/rees46-slice --through-kafka

lint: $(STAMP)
	$(BIN)/ruff check .

dev-up: $(STAMP)
	$(BIN)/streamrec dev up

dev-down: $(STAMP)
	$(BIN)/streamrec dev down

clean:
	rm -rf $(VENV) .streamrec .pytest_cache reports test-artifacts
