#!/usr/bin/env bash
# The whole test suite: lint, unit tests, then integration tests against a real broker (Apache Kafka 4.1.1,
# started by the test fixtures from the jars install-kafka.sh resolves; STREAMREC_TEST_BROKER=tansu runs the
# same suite on Tansu) and a real Redis (the one at 127.0.0.1:6379, or one the fixtures start from Debian's
# redis-server). The browser test needs Debian's Chromium. Each install step is a no-op when already done.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
bash scripts/install-kafka.sh
bash scripts/install-redis.sh
bash scripts/install-browser.sh
"$BIN/ruff" check .
"$BIN/pytest" -q -p no:cacheprovider --durations=20 tests "$@"
