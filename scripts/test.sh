#!/usr/bin/env bash
# The whole test suite, real tier included: provision the local world (idempotent), then pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh -k platform_sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/provision-local.sh
# Housekeeping on a long-lived machine: every test builds fresh project copies, whose cargo target dirs
# and layers accumulate in BuildKit's cache. Keep the most recently used 20 GB (the toolchain layers
# are used by every run, so they stay).
docker builder prune --force --keep-storage 20GB >/dev/null
.venv/bin/ruff check tasks tests tasks.py
exec .venv/bin/pytest "$@"
