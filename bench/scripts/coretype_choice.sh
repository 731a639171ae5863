#!/usr/bin/env bash
# Builds bench/scripts/coretype_choice.cpp against scipy-openblas32 and rnnkit's packed kernel and runs it
# with OpenBLAS's core type forced to Haswell (AVX2, what OPENBLAS_CORETYPE=Haswell gives) and detected
# from the CPU (variable unset), one thread each.
set -euo pipefail
cd "$(dirname "$0")/../.."
inc=$(python3 -c "import scipy_openblas32 as s; print(s.get_include_dir())")
lib=$(python3 -c "import scipy_openblas32 as s; print(s.get_lib_dir())")
out=$(mktemp -d)
g++ -O3 -std=c++17 -Icsrc -I"$inc" bench/scripts/coretype_choice.cpp csrc/rnnkit/gemm/packed_gemm*.cpp -L"$lib" \
    -lscipy_openblas -Wl,-rpath,"$lib" -o "$out/coretype_choice"
echo "# command: bash bench/scripts/coretype_choice.sh   ($(date -u +%Y-%m-%d), $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), load $(cut -d' ' -f1 /proc/loadavg))"
echo
echo "## OPENBLAS_CORETYPE=Haswell"
env OPENBLAS_CORETYPE=Haswell "$out/coretype_choice"
echo
echo "## OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE unset (detected from the CPU)"
env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$out/coretype_choice"
rm -rf "$out"
