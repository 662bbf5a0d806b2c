#!/usr/bin/env bash
# Measures the 1024 config-f generator (random weights) on the CUDA execution provider at batch
# 1, 8 and 32, in images/s, with bench/gpu.ts: first the fp32 synthesis graph, then the fp16 one
# (`--precision fp16`, which also reports the fp16 image error against fp32). Set PRECISIONS=fp32
# to skip fp16. Needs CUDA 12 and cuDNN 9 plus the onnxruntime-node CUDA binaries (see README: the
# postinstall download that npm 11 blocks by default).
# Each precision gets TIMEOUT_S seconds (default 270, so both fit in 10 minutes).
# Results go to $OUT/gpu-bench-<precision>.json when OUT is set, else to ./gpu-bench-<precision>.json.
#
# NOTE: written without access to a GPU machine and not yet run on one.
set -euo pipefail
cd "$(dirname "$0")/.."

out_dir="${OUT:-.}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi not found"
node --version

IFS=',' read -r -a precisions <<< "${PRECISIONS:-fp32,fp16}"
for precision in "${precisions[@]}"; do
  timeout "${TIMEOUT_S:-270}" npx tsx bench/gpu.ts --provider cuda --precision "$precision" \
    --batches "${BATCHES:-1,8,32}" --runs "${RUNS:-5}" --json "$out_dir/gpu-bench-$precision.json"
done
