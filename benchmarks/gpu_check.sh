#!/usr/bin/env bash
# The GPU check: keras-latent's ops and layer tests and its two speed
# benchmarks on the JAX and PyTorch backends of a machine with an NVIDIA
# GPU, in one invocation, with the figures written beside the card's name.
#
# It is meant for a machine whose Python already has JAX and PyTorch with
# CUDA but neither Keras nor TensorFlow, with no network. Prepare it on a
# machine with a network, from the repository root:
#
#     bash benchmarks/gpu_check.sh prepare    # wheels into .whl/, data
#                                             # into .gpu_data/
#
# then copy the working tree (with .whl/ and .gpu_data/) to the GPU machine
# and run there, from the repository root:
#
#     bash benchmarks/gpu_check.sh run OUTPUT_DIR
#
# `run` installs the carried wheels into a scratch folder (nothing
# system-wide), puts Fashion-MNIST into Keras's cache when it was carried,
# and writes to OUTPUT_DIR: gpu.txt (the card), tests_jax.log,
# tests_torch.log, gumbel_throughput.md and categorical_vae.md.
# GPU_CHECK_QUICK=1 shrinks every step (a dry run of the script on a CPU).
set -euo pipefail
cd "$(dirname "$0")/.."

PYTHON=${PYTHON:-python3}
# Python 3.12, the GPU image's; keras as installed here.
WHEEL_PYTHON_VERSION=${WHEEL_PYTHON_VERSION:-3.12}
WHEELS="keras==3.15.1 namex==0.1.0 optree==0.20.0 entmax==1.3
tensorflow-probability==0.25.0 dm-tree==0.1.10 gast==0.7.0 decorator==5.3.1"
FASHION_MNIST_DIR=/usr/share/datasets/fashion-mnist

prepare() {
    mkdir -p .whl .gpu_data
    # shellcheck disable=SC2086
    "$PYTHON" -m pip download --quiet --no-deps --only-binary=:all: \
        --python-version "$WHEEL_PYTHON_VERSION" --implementation cp \
        --platform manylinux_2_28_x86_64 --platform manylinux_2_27_x86_64 \
        --platform manylinux_2_24_x86_64 --platform manylinux_2_17_x86_64 \
        --platform manylinux2014_x86_64 -d .whl $WHEELS
    if [ -d "$FASHION_MNIST_DIR" ]; then
        cp "$FASHION_MNIST_DIR"/*.gz .gpu_data/
    else
        echo "note: no $FASHION_MNIST_DIR; the check will use digits only"
    fi
    du -sh .whl .gpu_data
}

run() {
    local out=${1:?usage: gpu_check.sh run OUTPUT_DIR}
    mkdir -p "$out"
    if ! "$PYTHON" -c "import keras" 2>/dev/null; then
        "$PYTHON" -m pip install --quiet --no-index --no-deps --no-compile \
            --target /tmp/keras_latent_site .whl/*.whl
        export PYTHONPATH=/tmp/keras_latent_site${PYTHONPATH:+:$PYTHONPATH}
    fi
    export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
    export PYTHONUNBUFFERED=1
    local dataset=digits
    if ls .gpu_data/*.gz >/dev/null 2>&1; then
        mkdir -p ~/.keras/datasets/fashion-mnist
        cp .gpu_data/*.gz ~/.keras/datasets/fashion-mnist/
        dataset=fashion_mnist
    fi
    {
        date -u +%Y-%m-%dT%H:%MZ
        nvidia-smi --query-gpu=name,driver_version,memory.total \
            --format=csv,noheader 2>/dev/null || echo "no NVIDIA GPU"
        "$PYTHON" -c "import jax, torch, keras; print('jax', jax.__version__,
jax.devices()); print('torch', torch.__version__, torch.cuda.is_available());
print('keras', keras.__version__)"
    } | tee "$out/gpu.txt"

    local tests=(tests/ops tests/layers)
    local epochs=10 seeds=3 repeats=9 shapes=(100x30x10 1024x64x128)
    if [ "${GPU_CHECK_QUICK:-0}" = 1 ]; then
        tests=(tests/ops/test_gumbel_softmax.py)
        epochs=1 seeds=1 repeats=1 shapes=(10x3x5 20x4x6) dataset=digits
    fi
    local status=0
    for backend in jax torch; do
        KERAS_BACKEND=$backend "$PYTHON" -m pytest -q -p no:cacheprovider \
            "${tests[@]}" >"$out/tests_$backend.log" 2>&1 || status=1
        tail -n 3 "$out/tests_$backend.log"
    done
    "$PYTHON" benchmarks/gumbel_throughput.py --backends jax torch \
        --clock wall --repeats "$repeats" --shapes "${shapes[@]}" \
        --output-dir "$out/gumbel" >/dev/null
    cp "$out/gumbel/results.md" "$out/gumbel_throughput.md"
    rm -r "$out/gumbel"
    "$PYTHON" benchmarks/compare_categorical_vae.py --backends jax torch \
        --dataset "$dataset" --epochs "$epochs" --seeds "$seeds" \
        >"$out/categorical_vae.log" 2>&1 || status=1
    {
        head -n 2 "$out/gpu.txt"
        grep -A 10 "^Categorical VAE" "$out/categorical_vae.log"
    } >"$out/categorical_vae.md"
    cat "$out/gumbel_throughput.md" "$out/categorical_vae.md"
    return $status
}

case "${1:-}" in
    prepare) prepare ;;
    run) run "${2:-}" ;;
    *)
        echo "usage: bash benchmarks/gpu_check.sh prepare | run OUTPUT_DIR" >&2
        exit 2
        ;;
esac
