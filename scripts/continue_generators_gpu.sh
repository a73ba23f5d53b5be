#!/usr/bin/env bash
# Continue training both shipped toy generators on one GPU (run through the device tool), then the quality check.
# Usage: bash scripts/continue_generators_gpu.sh OUT_DIR [SECONDS]   (starts from data/models; writes OUT_DIR/models)
set -euo pipefail
OUT=${1:?out dir}; GEN_S=${2:-190}
M=$OUT/models; mkdir -p "$M"; cp data/models/*.safetensors data/models/manifest.json "$M"/
if ! python3 -c "import diffusers" 2>/dev/null; then python3 -m pip install -q --no-deps --no-index .wheels/*.whl; fi
export PYTHONPATH=$PWD S2V_DATA=${S2V_DATA:-/tmp/s2v-data} S2V_QUIET=1 S2V_THREADS=6
CLIPS=${CLIPS:-16000}; DEVICE=${DEVICE:-cuda}
s2v() { python3 -m s2v_lib.cli "$@"; }
s2v pretrain world --clips "$CLIPS" --workers 14
s2v pretrain diffusion --init --lr 1.5e-4 --device "$DEVICE" --seconds "$GEN_S" --clips "$CLIPS" --out "$M" &
s2v pretrain gan --init --device "$DEVICE" --seconds "$GEN_S" --clips "$CLIPS" --out "$M" &
wait
python3 scripts/check_pretrained.py "$M" "$OUT/samples.png" 400 || true
rm -f "$M/toy-image-encoder.safetensors" "$M/toy-judge.safetensors"
