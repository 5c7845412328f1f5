#!/usr/bin/env bash
# Make sure the browser tests (tests/console/test_browser.py) have a Chromium: Debian's
# package, installed here when it can be (as root, with apt-get). Otherwise say how to get one
# and fail: the browser tests are never skipped. NPD_SYNC_CHROMIUM names another binary.
set -euo pipefail

browser=${NPD_SYNC_CHROMIUM:-/usr/bin/chromium}
if [ -x "$browser" ]; then
    exit 0
fi
if [ -n "${NPD_SYNC_CHROMIUM:-}" ]; then
    echo "NPD_SYNC_CHROMIUM=$browser is not an executable file" >&2
    exit 1
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's chromium for the browser tests (apt-get install chromium)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq chromium >/dev/null
    if [ -x /usr/bin/chromium ]; then
        exit 0
    fi
fi
cat >&2 <<'MESSAGE'
The browser tests need Chromium and it could not be installed from here. Install it:
    sudo apt-get install chromium        (Debian, Ubuntu)
or set NPD_SYNC_CHROMIUM to a Chromium binary, then run make test again.
MESSAGE
exit 1
