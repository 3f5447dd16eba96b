#!/usr/bin/env bash
# `make demo`: the main job end to end on the embedded default (local broker + Redis + simulated traffic).
# The broker is Apache Kafka when Java and its jars are here (install-kafka.sh), else Tansu.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${VENV:-.venv}/bin
bash scripts/install-kafka.sh
bash scripts/install-redis.sh
exec "$BIN/streamrec" demo "$@"
