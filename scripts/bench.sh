#!/usr/bin/env bash
# `make bench`: start the local stack if needed, then the live pipeline benchmark (figures printed and
# written to reports/bench/). Pass options through, e.g. `make bench ARGS="--events 50000 --workers 2"`.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
"$BIN/streamrec" dev up
exec "$BIN/streamrec" bench pipeline "$@"
