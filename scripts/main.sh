#!/usr/bin/env bash
# The main job: sets up .venv, starts the embedded sandbox, registers examples/flyte, drives them
# from Airflow and Dagster, and prints a summary table. Exits non-zero if any step went wrong.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/bootstrap.sh
exec python scripts/main_job.py "$@"
