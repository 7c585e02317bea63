#!/usr/bin/env bash
# A fresh Debian machine, simulated: the files that `make deps` installs are
# hidden in a private mount namespace, then the README's two commands are
# asked for a dry run. They must get as far as their install step: nothing
# while the Makefile is read may need a package that `make deps` installs.
#
#   bash t/fresh/check.sh        (as root: unshare -m and bind mounts)
set -euo pipefail
cd "$(dirname "$0")/../.."

if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null; then
    echo "t/fresh/check.sh: needs root and unshare (util-linux)" >&2
    exit 1
fi

# Directories and files that the Debian packages of `make deps` provide.
hide_dirs="/usr/lib/python3/dist-packages/greenlet /usr/share/llhttp /usr/share/include/llhttp
           /usr/include/boost/context /usr/lib/python3/dist-packages/tornado
           /usr/include/python3.11"
hide_files="/usr/include/ev.h /usr/include/cmocka.h /usr/bin/python3-config"

exec unshare -m --propagation private bash -s -- "$hide_dirs" "$hide_files" <<'INNER'
set -uo pipefail
empty=$(mktemp -d)
for d in $1; do [ -d "$d" ] && mount --bind "$empty" "$d"; done
for f in $2; do [ -e "$f" ] && mount --bind /dev/null "$f"; done
# /dev/null is there but empty: make must not take it for the real file.
for f in $2; do [ -s "$f" ] && { echo "fresh check: could not hide $f" >&2; exit 1; }; done
status=0
for goal in run test bench; do
    out=$(make -n "$goal" 2>&1)
    rc=$?
    if [ $rc -ne 0 ]; then
        echo "FAIL: on a fresh machine 'make $goal' stops before installing anything:" >&2
        echo "$out" | tail -n 5 >&2
        status=1
    elif ! grep -q 'apt-get install' <<<"$out"; then
        echo "FAIL: 'make $goal' has no install step" >&2
        status=1
    else
        echo "ok: 'make $goal' reaches its install step on a fresh machine"
    fi
done
# Building with the packages missing must stop with one line naming one.
bdir=$(mktemp -d)
out=$(make -s spindle B="$bdir/build" 2>&1)
rc=$?
rm -rf "$bdir"
if [ $rc -eq 0 ]; then
    echo "FAIL: make spindle built with its packages hidden" >&2; status=1
elif ! grep -q "is missing (Debian package" <<<"$out"; then
    echo "FAIL: a missing build dependency did not name its package:" >&2
    echo "$out" | tail -n 5 >&2; status=1
else
    echo "ok: a missing build dependency names its package: $(grep -m1 'is missing' <<<"$out")"
fi
exit $status
INNER
