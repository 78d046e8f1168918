#!/usr/bin/env bash
# The GPU figures in one go, on a machine where JAX (jax[cuda]) and PyTorch see a CUDA GPU.
# Logs and figures go to OUT (default runs/gpu).
#
#   experiments/gpu.sh [OUT]
#
# STAGES names the stages to run, in order (by default "tests bench_branching bench_vs_torch",
# about 9 minutes, so that one 10-minute command holds them):
#   tests            the network tests on the GPU (TESTS_S seconds at most, default 120)
#   bench_branching  each supernet branching against the fixed child net (BRANCHING_S, 240)
#   bench_vs_torch   PyTorch on cuda against the supernet (TORCH_S, 180; TORCH_SET, by default
#                    3 architectures with every edge selecting its op, no conditional)
#   bench_supernet   the supernet against one jit per architecture (SUPERNET_S, 420)
#   fashion_mnist    a slice of the Fashion-MNIST experiment (FASHION_S, 600; FASHION_SET)
# Each stage runs under its own time limit, so that one that runs long leaves the others their
# turn. XLA compiles slowly on a GPU: on one H200 the supernet's train and eval steps took 41 s
# to compile on digits (5 cells a stage), each fixed child net 5-8 s, and the benchmarks compile
# one child net per architecture. BENCH_ARGS goes to every benchmark (--quick: a smoke run).
# The stages share a persistent compilation cache under OUT.
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
run_stage() {  # run_stage NAME: one stage of STAGES
    # shellcheck disable=SC2086
    case $1 in
    tests) stage tests "${TESTS_S:-120}" "$python" -m pytest -q -p no:cacheprovider tests/test_supernet.py ;;
    bench_branching) stage bench_branching "${BRANCHING_S:-240}" "$python" -m experiments.bench_branching ${BENCH_ARGS:-} ;;
    bench_vs_torch) stage bench_vs_torch "${TORCH_S:-180}" "$python" -m experiments.bench_vs_torch ${BENCH_ARGS:-} \
        ${TORCH_SET:---set n_archs=3 --set step_archs=2 --set branching=select} ;;
    bench_supernet) stage bench_supernet "${SUPERNET_S:-420}" "$python" -m experiments.bench_supernet ${BENCH_ARGS:-} ;;
    fashion_mnist) stage fashion_mnist "${FASHION_S:-600}" "$python" -m experiments.fashion_mnist \
        ${FASHION_SET:---set budget=20 --set warmup_steps=200 --set retrain_epochs=2 --set retrain_seeds=1} \
        --set out="$out/fashion_mnist" ;;
    *) echo "unknown stage $1; stages: tests bench_branching bench_vs_torch bench_supernet fashion_mnist" >&2
        return 2 ;;
    esac
}

for name in ${STAGES:-tests bench_branching bench_vs_torch}; do
    run_stage "$name" || exit
done
