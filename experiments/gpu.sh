#!/usr/bin/env bash
# The GPU figures in one go, on a machine where JAX (jax[cuda]) and PyTorch see a CUDA GPU:
# the network tests on the GPU, bench_branching, bench_supernet, bench_vs_torch, and a slice
# of the Fashion-MNIST experiment, each under its own time limit so that one stage that runs
# long leaves the others their turn. Logs and figures go to OUT (default runs/gpu).
#
#   experiments/gpu.sh [OUT]
#
# Time limits in seconds: TESTS_S, BRANCHING_S, SUPERNET_S, TORCH_S; the Fashion-MNIST stage
# runs until TOTAL_S seconds after the start (about 29 minutes in all by default). XLA compiles slowly
# on a GPU: on one H200 the supernet's train and eval steps took 41 s to compile on digits
# (5 cells a stage), each fixed child net 5-8 s, and both benchmarks compile one child net
# per architecture; give them minutes. BENCH_ARGS goes to the benchmarks (--quick: a smoke run).
# FASHION_SET holds the experiment's options (by default a slice: 20 architectures a search,
# 2 epochs, 1 seed). The stages share a persistent compilation cache under OUT.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/gpu}
mkdir -p "$out"
python=${PYTHON:-python3}
export PYTHONUNBUFFERED=1 JAX_COMPILATION_CACHE_DIR=${JAX_COMPILATION_CACHE_DIR:-$out/jax_cache}

stage() {  # stage NAME SECONDS COMMAND...: runs COMMAND under a limit, logs to OUT/NAME.log
    local name=$1 limit=$2
    shift 2
    echo "== $name (limit ${limit}s): $*"
    local start=$SECONDS
    timeout --signal=INT --kill-after=10 "$limit" "$@" >"$out/$name.log" 2>&1
    local rc=$?
    echo "== $name: exit $rc after $((SECONDS - start))s; last lines:"
    tail -n 4 "$out/$name.log"
}

"$python" - <<'EOF' 2>&1 | tee "$out/versions.log"
import jax, flax, optax, torch
print("jax", jax.__version__, "flax", flax.__version__, "optax", optax.__version__)
print("torch", torch.__version__, "cuda", torch.cuda.is_available())
print("devices", jax.devices())
EOF
stage tests "${TESTS_S:-180}" "$python" -m pytest -q -p no:cacheprovider tests/test_supernet.py
# shellcheck disable=SC2086
stage bench_branching "${BRANCHING_S:-240}" "$python" -m experiments.bench_branching ${BENCH_ARGS:-}
# shellcheck disable=SC2086
stage bench_supernet "${SUPERNET_S:-420}" "$python" -m experiments.bench_supernet ${BENCH_ARGS:-}
# shellcheck disable=SC2086
stage bench_vs_torch "${TORCH_S:-300}" "$python" -m experiments.bench_vs_torch ${BENCH_ARGS:-}
# shellcheck disable=SC2086
stage fashion_mnist $((${TOTAL_S:-1740} - SECONDS)) "$python" -m experiments.fashion_mnist \
    ${FASHION_SET:---set budget=20 --set warmup_steps=200 --set retrain_epochs=2 --set retrain_seeds=1} \
    --set out="$out/fashion_mnist"
