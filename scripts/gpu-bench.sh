#!/usr/bin/env bash
# Measures the 1024 config-f generator (random weights) on the CUDA execution provider at batch
# 1, 8 and 32, in images/s, with bench/gpu.ts. Needs CUDA 12 and cuDNN 9 plus the onnxruntime-node
# CUDA binaries (see README: the postinstall download that npm 11 blocks by default).
# An fp16 graph is measured too when FP16_GRAPH names a synthesis_fp16.onnx.
# Results go to $OUT/gpu-bench.json when OUT is set, else to ./gpu-bench.json.
#
# NOTE: written without access to a GPU machine and not yet run on one.
set -euo pipefail
cd "$(dirname "$0")/.."

out_dir="${OUT:-.}"
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || echo "nvidia-smi not found"
node --version

args=(--provider cuda --batches "${BATCHES:-1,8,32}" --runs "${RUNS:-5}" --json "$out_dir/gpu-bench.json")
if [[ -n "${FP16_GRAPH:-}" ]]; then
  args+=(--fp16-graph "$FP16_GRAPH")
fi
timeout "${TIMEOUT_S:-480}" npx tsx bench/gpu.ts "${args[@]}"
