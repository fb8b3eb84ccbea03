#!/usr/bin/env bash
# One command for the GPU paths nothing on a CPU machine can test (see scripts/check_gpu.py --help):
#   scripts/check_gpu.sh [--dry-run] [--output-dir DIR]
# Uses $PYTHON, else the project's .venv, else python3; runs from the checkout so that the scripts are found.
set -euo pipefail
cd "$(dirname "$0")/.."
python="${PYTHON:-}"
if [ -z "$python" ]; then
  if [ -x .venv/bin/python ]; then python=.venv/bin/python; else python=python3; fi
fi
exec env PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$python" scripts/check_gpu.py "$@"
