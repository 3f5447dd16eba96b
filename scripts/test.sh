#!/usr/bin/env bash
# The whole test suite: lint, unit tests, then integration tests against a real broker (Tansu, started by the
# test fixtures) and a real Redis (the one at 127.0.0.1:6379, or one the fixtures start). The browser test
# needs Debian's Chromium, installed here when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
bash scripts/install-browser.sh
"$BIN/ruff" check .
"$BIN/pytest" -q -p no:cacheprovider --durations=20 tests "$@"
