#!/usr/bin/env bash
# ragtune's CUDA paths on a real GPU (scripts/gpu_check.py): installs the wheels carried in .whl/ (the packages a
# bare GPU machine lacks: pydantic and its needs, bitsandbytes) into /tmp/site, then runs the check within 4 minutes.
# Summary: $OUT/gpu_check.json (default ./gpu_out). Arguments go to the check (--cpu: dry run on the CPU).
set -u
cd "$(dirname "$0")/.."
if compgen -G ".whl/*.whl" >/dev/null; then
  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl || exit 1
  export PYTHONPATH="/tmp/site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$PWD/src:$PYTHONPATH" PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1
exec timeout -k 10 230 "${PYTHON:-python3}" scripts/gpu_check.py "$@"
