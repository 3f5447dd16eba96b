#!/usr/bin/env bash
# Debian's Chromium (+ ChromeDriver) for the end-to-end browser tests (tests/integration/test_browser_demo.py).
# Playwright drives this system binary; `playwright install` is never used (browser downloads are blocked here).
# Where there is no apt-get (not Debian), it says so and leaves the browser tests to skip with that message.
set -euo pipefail
if [[ -x /usr/bin/chromium ]]; then
    exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-browser: no apt-get here; the browser tests will be skipped (need /usr/bin/chromium)" >&2
    exit 0
fi
SUDO=()
if [[ $(id -u) -ne 0 ]]; then
    command -v sudo >/dev/null 2>&1 || { echo "install-browser: need root or sudo for apt-get" >&2; exit 1; }
    SUDO=(sudo)
fi
export DEBIAN_FRONTEND=noninteractive
echo "install-browser: installing Debian chromium and chromium-driver" >&2
"${SUDO[@]}" apt-get update -qq
"${SUDO[@]}" apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
/usr/bin/chromium --version >&2
