#!/usr/bin/env bash
# `make demo`: the main job end to end on the embedded default (local broker + Redis + simulated traffic).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
exec "$BIN/streamrec" demo "$@"
