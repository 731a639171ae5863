#!/usr/bin/env bash
# The portable build on older x86-64 CPUs, under QEMU's user-mode emulation: the kernels' tests run on
#   Haswell      AVX2 + FMA, no AVX-512: the avx2 packed GEMM, the x86-64-v3 clones, the portable sampler
#   SandyBridge  AVX only, the oldest CPU model NumPy 2.x itself runs on under QEMU 7.2 (Nehalem stops
#                with SIGILL inside NumPy): the generic packed GEMM and the baseline clones
# First it checks that the dispatch picked those kernels on each model; any SIGILL or failure fails.
#
#   bash tests/emulated_cpu.sh            # the native-heavy test files (slow: see README, Contributing)
#   bash tests/emulated_cpu.sh --quick    # one file per kernel family (what CI runs)
#
# Needs qemu-x86_64 (Debian's qemu-user); as root the script installs it when it is missing, and fails
# if it cannot. Runs the `python` on PATH (PYTHON=... to choose), with whatever rnnkit it imports.
set -euo pipefail
cd "$(dirname "$0")/.."
python="$(command -v "${PYTHON:-python}")"

if [ "${1:-}" = "--quick" ]; then
    tests=(tests/test_portability.py tests/test_kernels.py tests/test_half_recurrent_weights.py tests/test_attention.py)
else
    tests=(tests/test_portability.py tests/test_kernels.py tests/test_half_recurrent_weights.py tests/test_kernels_errors.py tests/test_layers.py
           tests/test_embedded_input.py tests/test_attention.py tests/test_nn.py tests/test_losses.py
           tests/test_optim.py tests/test_charlm.py tests/test_seq2seq.py)
fi

if ! command -v qemu-x86_64 > /dev/null; then
    [ "$(id -u)" = 0 ] || { echo "emulated_cpu.sh: needs qemu-x86_64 (apt-get install qemu-user)" >&2; exit 1; }
    echo "== apt-get install qemu-user"
    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-user > /dev/null
fi
qemu-x86_64 --version | head -1

# cpu model (QEMU), OpenBLAS core type for it, expected kernels "packed_gemm sampler_gemv sampler_int8 pointwise"
models=("Haswell Haswell avx2 portable portable x86-64-v3"
        "SandyBridge Sandybridge generic portable portable baseline")
for model in "${models[@]}"; do
    read -r cpu coretype expected <<< "$model"
    echo "== -cpu $cpu"
    # The machine may force a newer OpenBLAS core type (OPENBLAS_CORETYPE) than the emulated CPU has;
    # NumPy's OpenBLAS obeys it, so the tests run with the emulated CPU's. rnnkit's own OpenBLAS detects
    # its core type from the (emulated) CPU whatever the variable says: checked here with an older one.
    export OPENBLAS_CORETYPE="$coretype"
    got="$(OPENBLAS_CORETYPE=Nehalem qemu-x86_64 -cpu "$cpu" "$python" -c 'from rnnkit import _C, _blas_load
k = _C.kernels()
print(_blas_load.corename(), k["packed_gemm"], k["sampler_gemv"], k["sampler_int8"], k["pointwise"])' 2> /dev/null)"
    echo "rnnkit's OpenBLAS core type and kernels picked: $got"
    [ "$got" = "$coretype $expected" ] || { echo "expected: $coretype $expected" >&2; exit 1; }
    start=$SECONDS
    # QEMU warns about CPUID bits it cannot emulate (tsc-deadline, rtm, ...): noise, filtered out.
    qemu-x86_64 -cpu "$cpu" "$python" -m pytest -q -p no:cacheprovider "${tests[@]}" \
        2> >(grep -v "^qemu-x86_64: warning: TCG doesn't support requested feature" >&2)
    echo "-cpu $cpu: $((SECONDS - start)) s"
done
