#!/usr/bin/env bash
# Make sure the benchmarks of the daily call limit (P12-P14, bench/daily.py) have libfaketime:
# they shift the clock of their own PostgreSQL so that its midnight comes minutes after the
# day starts. Debian's package, installed here when it can be (as root, with apt-get).
# Otherwise say how to get it and fail. NPD_SYNC_LIBFAKETIME names another library.
set -euo pipefail

found() {
    if [ -n "${NPD_SYNC_LIBFAKETIME:-}" ]; then
        [ -f "$NPD_SYNC_LIBFAKETIME" ]
        return
    fi
    compgen -G '/usr/lib/*/faketime/libfaketimeMT.so.1' >/dev/null \
        || [ -f /usr/lib/faketime/libfaketimeMT.so.1 ]
}

if found; then
    exit 0
fi
if [ -n "${NPD_SYNC_LIBFAKETIME:-}" ]; then
    echo "NPD_SYNC_LIBFAKETIME=$NPD_SYNC_LIBFAKETIME is not a file" >&2
    exit 1
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing Debian's faketime for the benchmarks P12-P14 (apt-get install faketime)"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq faketime >/dev/null
    if found; then
        exit 0
    fi
fi
cat >&2 <<'MESSAGE'
The benchmarks P12-P14 need libfaketime and it could not be installed from here. Install it:
    sudo apt-get install faketime        (Debian, Ubuntu)
or set NPD_SYNC_LIBFAKETIME to libfaketimeMT.so.1, or leave them out: --only P1,P2,...
MESSAGE
exit 1
