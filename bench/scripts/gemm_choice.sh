#!/usr/bin/env bash
# Builds and runs bench/scripts/gemm_choice.cpp against the installed scipy-openblas32 and rnnkit's packed kernel.
# OPENBLAS_CORETYPE, if the machine sets it, pins OpenBLAS to an older kernel: unset it to measure what
# users get.
set -euo pipefail
cd "$(dirname "$0")/../.."
inc=$(python3 -c "import scipy_openblas32 as s; print(s.get_include_dir())")
lib=$(python3 -c "import scipy_openblas32 as s; print(s.get_lib_dir())")
out=$(mktemp -d)
g++ -O3 -std=c++17 -Icsrc -I"$inc" bench/scripts/gemm_choice.cpp csrc/rnnkit/gemm/packed_gemm*.cpp -L"$lib" -lscipy_openblas \
    -Wl,-rpath,"$lib" -o "$out/gemm_choice"
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$out/gemm_choice"
