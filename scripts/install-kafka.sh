#!/usr/bin/env bash
# Apache Kafka 4.1.1 for `streamrec dev up` and the integration tests: Maven copies kafka_2.13 (the broker and
# its format tool), its runtime dependencies and a log4j2 binding (deploy/kafka/pom.xml) into a cache folder
# outside the repository: $STREAMREC_KAFKA_LIBS, else ${XDG_CACHE_HOME:-~/.cache}/streamrec/kafka-4.1.1.
# Runs Maven only when that folder is missing or incomplete. Without java or mvn it says so and exits 0:
# the stack and the tests then fall back to Tansu.
set -euo pipefail
cd "$(dirname "$0")/.."
POM=deploy/kafka/pom.xml
KAFKA_VERSION=4.1.1
CACHE=${STREAMREC_KAFKA_LIBS:-${XDG_CACHE_HOME:-$HOME/.cache}/streamrec/kafka-$KAFKA_VERSION}
POM_SUM=$(sha256sum "$POM" | cut -d' ' -f1)
# Complete = Maven finished (the marker holds the POM's checksum, so a changed POM copies again).
if [[ -f "$CACHE/.complete" && "$(cat "$CACHE/.complete")" == "$POM_SUM" && -f "$CACHE/kafka_2.13-$KAFKA_VERSION.jar" ]]; then
    exit 0
fi
for tool in java mvn; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "install-kafka: no $tool here: skipping Apache Kafka; the dev stack and the tests will use Tansu" >&2
        exit 0
    fi
done
echo "install-kafka: resolving Apache Kafka $KAFKA_VERSION through Maven into $CACHE" >&2
STAGING="$CACHE.partial.$$"
rm -rf "$STAGING"
mkdir -p "$(dirname "$CACHE")"
trap 'rm -rf "$STAGING"' EXIT
mvn -q -B -Dstyle.color=never -f "$POM" dependency:copy-dependencies -DoutputDirectory="$STAGING"
test -f "$STAGING/kafka_2.13-$KAFKA_VERSION.jar" || { echo "install-kafka: Maven did not copy kafka_2.13" >&2; exit 1; }
echo "$POM_SUM" > "$STAGING/.complete"
rm -rf "$CACHE"
mv "$STAGING" "$CACHE"
echo "install-kafka: $(ls "$CACHE"/*.jar | wc -l) jars in $CACHE" >&2
