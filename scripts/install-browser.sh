#!/usr/bin/env bash
# Debian's Chromium + ChromeDriver for the end-to-end browser test (tests/integration/test_browser_demo.py).
# Playwright drives this system binary; `playwright install` is never used (browser downloads are blocked here).
set -euo pipefail
if [[ -x /usr/bin/chromium ]]; then
    exit 0
fi
if [[ $(id -u) -ne 0 ]]; then
    SUDO=sudo
else
    SUDO=
fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq
$SUDO apt-get install -y -qq --no-install-recommends chromium chromium-driver fonts-dejavu-core >/dev/null
/usr/bin/chromium --version
