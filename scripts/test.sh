#!/usr/bin/env bash
# The whole test suite, real tier included: provision the local world (idempotent), lint, then pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh -k platform_sh). The provisioning variables
# (scripts/provision-local.sh's header) apply; CROSSDOCK_VENV is also the venv the tools run from.
set -Eeuo pipefail
trap 'printf "[test.sh] error: line %s: command exited %s: %s\n" "$LINENO" "$?" "$BASH_COMMAND" >&2' ERR
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv=${CROSSDOCK_VENV:-.venv}
bash scripts/provision-local.sh
# Housekeeping on a long-lived machine: every test builds fresh project copies, whose cargo target dirs
# and layers accumulate in BuildKit's cache. Keep the most recently used 15 GB per engine (two engines'
# data roots share this disk; the toolchain layers are used by every run, so they stay). The images
# earlier runs pulled or loaded (smoke tests pull every platform; with the containerd store each is
# also unpacked) are not needed again: tests pull their own.
docker builder prune --force --keep-storage 15GB >/dev/null
docker image prune --all --force >/dev/null
docker volume prune --force >/dev/null  # anonymous volumes of containers removed without --volumes
# The local registry keeps every image earlier runs pushed under test/ (each test names its own).
bash scripts/provision-local.sh registry-prune
shellcheck scripts/provision-local.sh scripts/test.sh .ci/run
shellcheck --severity=warning -x -P docker docker/platform.sh docker/jobserver.sh docker/sources.sh
"$venv/bin/ruff" check tasks tests tasks.py
exec "$venv/bin/pytest" "$@"
