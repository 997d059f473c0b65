#!/usr/bin/env bash
# Sets up .venv and runs the whole test suite (lint first), against embedded sandboxes.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
ruff check .
python -m pytest -n 2 -p no:cacheprovider "$@"
