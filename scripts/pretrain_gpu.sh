#!/usr/bin/env bash
# Train every frozen toy model on one GPU in ~8 minutes (run through the device tool; see data/models/README.md).
# Wave 1: image encoder || judge.  Wave 2 (needs the encoder): diffusion generator || GAN.  Then a quality check.
# Usage: bash scripts/pretrain_gpu.sh OUT_DIR [ENCODER_S JUDGE_S GENERATOR_S]
set -euo pipefail
OUT=${1:?out dir}; ENC_S=${2:-110}; JUDGE_S=${3:-110}; GEN_S=${4:-300}
M=$OUT/models; mkdir -p "$M"
if ! python3 -c "import diffusers" 2>/dev/null; then python3 -m pip install -q --no-deps --no-index .wheels/*.whl; fi
export PYTHONPATH=$PWD S2V_DATA=${S2V_DATA:-/tmp/s2v-data} S2V_QUIET=1 S2V_THREADS=6
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
CLIPS=${CLIPS:-24000}; DEVICE=${DEVICE:-cuda}
s2v() { python3 -m s2v_lib.cli "$@"; }
s2v pretrain world --clips "$CLIPS" --workers 14
( s2v pretrain image-encoder --device "$DEVICE" --seconds "$ENC_S" --clips "$CLIPS" --out "$M" && \
  ( s2v pretrain diffusion --device "$DEVICE" --seconds "$GEN_S" --clips "$CLIPS" --out "$M" &
    s2v pretrain gan --device "$DEVICE" --seconds "$GEN_S" --clips "$CLIPS" --out "$M" & wait ) ) &
s2v pretrain judge --device "$DEVICE" --seconds "$JUDGE_S" --clips "$CLIPS" --out "$M" &
wait
python3 scripts/check_pretrained.py "$M" "$OUT/samples.png" 600
ls -la "$M"
