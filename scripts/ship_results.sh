#!/usr/bin/env bash
# Maintainers: re-make the shipped tables in data/results/ that the notebooks and the README read (not run by CI).
#
#   bash scripts/ship_results.sh [COMMAND ...]      # default: demo ablate ssl control geometry ambiguity
#
# Each command runs with --seeds 3 (reported seeds 1, 2, 3; settings were chosen on seed 0) into runs/ship/<name>,
# then its tables and figures (not its large arrays or trained weights) are copied to data/results/<name>/ and the
# wall time is appended to data/results/times.tsv. On 2 idle CPU cores the whole set takes roughly 1.5-2 hours.
set -euo pipefail
cd "$(dirname "$0")/.."
export S2V_THREADS="${S2V_THREADS:-2}" S2V_QUIET="${S2V_QUIET:-1}" HF_HUB_OFFLINE=1 MPLBACKEND=Agg
commands=("$@")
[ ${#commands[@]} -gt 0 ] || commands=(demo ablate ssl control geometry ambiguity limits)
for name in "${commands[@]}"; do
  run="runs/ship/$name"
  start=$(date +%s)
  s2v "$name" --seeds 3 --out "$run" --force
  seconds=$(( $(date +%s) - start ))
  dest="data/results/$name"
  rm -rf "$dest" && mkdir -p "$dest"
  find "$run" -maxdepth 1 -type f \( -name '*.json' -o -name '*.md' -o -name '*.csv' -o -name '*.png' -o -name 'embeddings.npz' \) \
    ! -name 'top10_moments.json' -exec cp {} "$dest/" \;
  printf '%s\t%s\t%s\t%s\n' "$name" "s2v $name --seeds 3" "$seconds" "$(date -u +%Y-%m-%d)" >> data/results/times.tsv
  echo "shipped $dest ($seconds s)"
done
