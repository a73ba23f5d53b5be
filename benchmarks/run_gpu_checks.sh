#!/usr/bin/env bash
# The full profile's GPU checks, in one command, for a maintainer with a CUDA card (no download needed: every model
# here has random weights of the real architecture). About 20-25 minutes on an H100, most of it torch.compile.
#
#   bash benchmarks/run_gpu_checks.sh            # writes benchmarks/results/<card>-<date>.json; commit that file
#
# Steps (each writes its part of the JSON as it goes, so an interrupted run keeps what it measured):
#   1. the CPU-side tests of the full profile (tiny models; a minute)
#   2. generation benchmark: ours vs the plain diffusers pipeline, same batches, same global flags, compiled and not
#   3. training benchmark: AudioEncoder.paper() from a memory-mapped cache, clips per second
#   4. end to end as on a Colab T4 (fp16, a 15 GB card's plan, a hard 14 GB cap): precompute, train, draw
#   5. end to end on the card's own path (bf16 on Ampere or newer)
# Nothing in the README or docs/full_profile.md about GPU time or memory is a measurement until this has run.
set -uo pipefail
cd "$(dirname "$0")/.."
export HF_HUB_OFFLINE=1 S2V_QUIET=1 PYTHONUNBUFFERED=1
python -c "import torch, sys; sys.exit(0 if torch.cuda.is_available() else 'no CUDA device: nothing to check here')" || exit 1
status=0
run() {  # run NAME SECONDS COMMAND...: a step that fails or times out is reported, and the next steps still run
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s): $*"
    local t0=$SECONDS
    timeout --signal=INT --kill-after=30 "$limit" "$@"
    local rc=$?
    echo "== $name: exit $rc after $((SECONDS - t0)) s"
    [ $rc -eq 0 ] || status=1
}
run tests 300 python -m pytest -q -p no:cacheprovider tests/test_full.py tests/test_distributed.py
run generation 480 python benchmarks/full_profile_gpu.py generation --batch 8
run training 480 python benchmarks/full_profile_gpu.py training
run e2e-t4 600 python benchmarks/full_profile_e2e.py --emulate-t4
run e2e 600 python benchmarks/full_profile_e2e.py
ls -l benchmarks/results/
exit $status
