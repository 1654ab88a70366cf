#!/usr/bin/env bash
# All GPU checks in one go on the lent H200 (see ../shared/tools/gpu/README.md):
# correctness first inside each script, then timings; full results under $OUT.
set -u
export PYTHONUNBUFFERED=1
OUT=${OUT:-/tmp/gpu-out}; mkdir -p "$OUT"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv | tee "$OUT/nvidia-smi.txt"
echo "=== inference"; timeout 240 python3 benchmarks/gpu_inference.py --out "$OUT" 2>&1 | tee "$OUT/gpu_inference.log"
echo "=== saliency";  timeout 200 python3 benchmarks/saliency.py --device cuda --out "$OUT/saliency.json" 2>&1 | tee "$OUT/saliency.log"
echo "=== generation"; timeout 90 python3 benchmarks/gpu_generation.py 2>&1 | tee "$OUT/gpu_generation.log"
