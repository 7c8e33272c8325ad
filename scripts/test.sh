#!/usr/bin/env bash
# The whole test suite, real tier included: provision the local world (idempotent), then pytest.
# Extra arguments go to pytest (e.g. scripts/test.sh -k platform_sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
bash scripts/provision-local.sh
.venv/bin/ruff check tasks tests tasks.py
exec .venv/bin/pytest "$@"
