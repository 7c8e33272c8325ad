#!/usr/bin/env bash
# The whole test suite, real tier included: provision the local world (idempotent), lint, then pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh -k platform_sh). The provisioning variables
# (scripts/provision-local.sh's header) apply; CROSSDOCK_VENV is also the venv the tools run from.
# CROSSDOCK_MIN_FREE_GB: the free space (GB, on the engine's data root) a run needs before it starts [25].
set -Eeuo pipefail
trap 'printf "[test.sh] error: line %s: command exited %s: %s\n" "$LINENO" "$?" "$BASH_COMMAND" >&2' ERR
cd "$(dirname "${BASH_SOURCE[0]}")/.."
venv=${CROSSDOCK_VENV:-.venv}
bash scripts/provision-local.sh

# Housekeeping on a long-lived machine: every test builds fresh project copies, whose cargo target dirs
# and layers accumulate in BuildKit's cache, and smoke tests pull (and, with the containerd store, unpack)
# every platform's image. Neither is needed by the next run but the most recently used cache (the
# toolchain layers every run uses). Done before the run and again after it, so that one run's leftovers
# never fill the disk for whatever runs next (two engines' data roots and other work share this disk).
housekeeping() {  # KEEP (build cache to keep, e.g. 10GB)
  docker image prune --all --force >/dev/null
  docker builder prune --force --keep-storage "$1" >/dev/null
  docker volume prune --force >/dev/null  # anonymous volumes of containers removed without --volumes
}
free_gb() { df -P --block-size=1G "$(docker info --format '{{.DockerRootDir}}')" | awk 'NR==2 {print $4}'; }
housekeeping 10GB
need=${CROSSDOCK_MIN_FREE_GB:-25}
if [ "$(free_gb)" -lt "$need" ]; then
  echo "[test.sh] $(free_gb) GB free, $need GB needed: dropping the whole build cache" >&2
  housekeeping 0
fi
# The local registry keeps every image earlier runs pushed under test/ (each test names its own).
bash scripts/provision-local.sh registry-prune
if [ "$(free_gb)" -lt "$need" ]; then
  echo "[test.sh] error: only $(free_gb) GB free on $(docker info --format '{{.DockerRootDir}}')'s disk;" \
    "a run needs $need GB (CROSSDOCK_MIN_FREE_GB). What uses it:" >&2
  du -xsh /var/lib/docker* "${CROSSDOCK_STATE:-/var/lib/crossdock}" /tmp 2>/dev/null | sort -h >&2 || true
  exit 1
fi
shellcheck scripts/provision-local.sh scripts/test.sh .ci/run
shellcheck --severity=warning -x -P docker docker/platform.sh docker/jobserver.sh docker/sources.sh
"$venv/bin/ruff" check tasks tests tasks.py
status=0
"$venv/bin/pytest" "$@" || status=$?
housekeeping 10GB || echo "[test.sh] warning: the after-run housekeeping failed" >&2
exit "$status"
