#!/usr/bin/env bash
# Memory safety: build rnnkit's extension with AddressSanitizer and UndefinedBehaviorSanitizer in a
# throwaway copy of the tree, run the test suite against that build with the sanitizer runtime
# preloaded, and exit non-zero if any sanitizer reported anything (in pytest itself or in any process a
# test starts: the CLIs, the MPI ranks, the docs' blocks).
#
#   bash tests/sanitize.sh                 # the whole suite
#   bash tests/sanitize.sh tests/test_kernels.py -k lstm    # any pytest arguments instead
#
# How:
# - The copy is built with -fsanitize=address,undefined -fno-sanitize-recover=undefined: the first
#   undefined behaviour aborts with its report, as an ASan error does.
# - Python itself is not instrumented, so libasan must be the first library loaded: LD_PRELOAD names the
#   runtime of the compiler that built the extension (g++ -print-file-name=libasan.so), then its C++
#   runtime.
# - Every report goes to a file under the work directory (log_path), so a report in a subprocess whose
#   test expects a failing exit status is not lost; the script fails if any such file exists.
# - Leak checking is off: CPython and NumPy keep interned objects, caches and arenas alive until exit by
#   design, and LeakSanitizer cannot tell those from a leak here (a suppression by module would match the
#   interpreter frames under every allocation, rnnkit's included). Lost buffers of rnnkit's own are
#   measured instead by RSS over a long run (bench/scripts/memory_flat.py).
# - allocator_may_return_null: a request too large for memory must fail as it does without ASan (NumPy's
#   MemoryError, which tests/test_huge_sizes.py expects), not abort the process.
# - The tests run on the interpreter given by $PYTHON (default python3) with its installed packages
#   (CI: the .[test] environment), importing rnnkit from the copy's python/.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
cxx="${CXX:-g++}"
# RNNKIT_SANITIZE_WORK names a work directory to keep (the build and the reports) instead of a temporary one.
if [ -n "${RNNKIT_SANITIZE_WORK:-}" ]; then
    work="$RNNKIT_SANITIZE_WORK"
    mkdir -p "$work"
    rm -rf "$work/reports"
else
    work="$(mktemp -d)"
    trap 'rm -rf "$work"' EXIT
fi

echo "== copy of the tree in $work/tree"
mkdir -p "$work/tree"
tar -C "$root" --exclude=.git --exclude=.ci-venv --exclude=build --exclude='*.so' --exclude=__pycache__ \
    --exclude=.pytest_cache --exclude=.hypothesis -cf - . | tar -C "$work/tree" -xf -

echo "== build with -fsanitize=address,undefined"
unset RNNKIT_WERROR  # warnings are the regular build's to judge; instrumentation adds its own
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"
start=$(date +%s)
(cd "$work/tree" && CC="$cxx" CXX="$cxx" CFLAGS="$san" LDFLAGS="$san" \
    "$python" setup.py build_ext --inplace --force -q > "$work/build.log" 2>&1) || { tail -50 "$work/build.log"; exit 1; }
echo "built in $(( $(date +%s) - start )) s"

# libstdc++ is preloaded too: ASan's interceptor of __cxa_throw binds at start-up, and without the C++
# runtime loaded by then the first C++ exception (every ValueError a binding raises) aborts in it.
asan_rt="$("$cxx" -print-file-name=libasan.so)"
cxx_rt="$("$cxx" -print-file-name=libstdc++.so)"
for lib in "$asan_rt" "$cxx_rt"; do [ -f "$lib" ] || { echo "no $lib for $cxx" >&2; exit 1; }; done
mkdir "$work/reports"
export LD_PRELOAD="$asan_rt $cxx_rt${LD_PRELOAD:+ $LD_PRELOAD}"
export ASAN_OPTIONS="detect_leaks=0:allocator_may_return_null=1:log_path=$work/reports/asan:strict_string_checks=1:detect_stack_use_after_return=1:check_initialization_order=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$work/reports/ubsan"
export PYTHONPATH="$work/tree/python"
# The sanitized extension must be the one imported (not an installed or in-place build elsewhere).
"$python" -c "import rnnkit._C as c, sys; assert c.__file__.startswith('$work/tree/'), c.__file__; print('rnnkit._C from', c.__file__)"

echo "== pytest under the sanitizers"
start=$(date +%s)
status=0
(cd "$work/tree" && "$python" -m pytest -q -p no:cacheprovider "${@:-tests}") || status=$?
echo "pytest exit status $status after $(( $(date +%s) - start )) s"

reports=$(find "$work/reports" -type f | wc -l)
if [ "$reports" -gt 0 ]; then
    echo "== $reports sanitizer report(s):"
    for f in "$work"/reports/*; do echo "--- $f"; head -60 "$f"; done
    exit 1
fi
echo "== no sanitizer reports"
exit "$status"
