#!/usr/bin/env bash
# Memory safety: build rnnkit's extension with AddressSanitizer and UndefinedBehaviorSanitizer in a
# throwaway copy of the tree, run the test suite against that build with the sanitizer runtime
# preloaded, and exit non-zero if any sanitizer reported anything (in pytest itself or in any process a
# test starts: the CLIs, the MPI ranks, the docs' blocks).
#
#   bash tests/sanitize.sh                 # the whole suite, then the leak check
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
# - Leaks: the suite runs with leak checking off (CPython leaves objects unfreed at exit by design, and a
#   suppression by module would match the interpreter frames under every allocation, rnnkit's included);
#   then, for the whole-suite run, LeakSanitizer runs over native-heavy tests and the script fails on
#   a leaked block whose allocation stack holds one of rnnkit's source files. Memory kept across steps
#   (not leaked) is measured by RSS over a long run (bench/scripts/memory_flat.py).
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

# A report is an error (ASan's "ERROR:", UBSan's "runtime error", a failed runtime CHECK); the log files
# also receive warnings that are not (a refused huge allocation, returned as NULL, is one).
reports=$(grep -l -E "ERROR: |runtime error|CHECK failed" "$work"/reports/* 2>/dev/null || true)
if [ -n "$reports" ]; then
    echo "== sanitizer report(s):"
    for f in $reports; do echo "--- $f"; head -60 "$f"; done
    exit 1
fi
echo "== no sanitizer reports"
[ "$status" -eq 0 ] || exit "$status"
[ $# -eq 0 ] || exit 0

# Leaks: LeakSanitizer at the exit of a pytest run over the native-heavy tests, with full stacks
# (fast_unwind_on_malloc=0: the interpreter has no frame pointers). CPython leaves objects unfreed at exit
# by design, so only a leaked block allocated with one of rnnkit's own source files on its stack (its
# kernels, bindings or buffer pool) fails the run. (Not test_capi.py: it runs the compiler, whose own
# leaks LeakSanitizer, inherited through LD_PRELOAD, would turn into a failed compile.)
echo "== leak check"
mkdir -p "$work/leaks"
start=$(date +%s)
# One process per test file: LeakSanitizer considers at most 5,000 leaked blocks per process (the script
# fails if a file reaches that). A file that imports torch leaves more than that unfreed at exit, so the
# files here are those that reach every native entry point without torch: kernels, layers' errors,
# nn, losses, the char-LM and its sampler, the fuzzers (kernels, layers, attention, optimisers, pooling,
# the sampler, classify, captions), sizes, and concurrency (seq2seq decoding). pytest's own status is written to a file: at exit
# LeakSanitizer replaces it with its own exit code whenever anything is unfreed, which with CPython is
# always.
for t in test_kernels test_layers_errors test_nn test_losses test_charlm test_fuzz test_fuzz_entry_points \
         test_huge_sizes test_concurrency; do
    (cd "$work/tree" && ASAN_OPTIONS="detect_leaks=1:fast_unwind_on_malloc=0:allocator_may_return_null=1:log_path=$work/leaks/$t" \
        "$python" -c 'import sys, pytest; rc = int(pytest.main(sys.argv[2:])); open(sys.argv[1], "w").write(str(rc))' \
        "$work/leaks/$t.status" -q -p no:cacheprovider "tests/$t.py") || true
    [ "$(cat "$work/leaks/$t.status" 2>/dev/null)" = 0 ] || { echo "pytest failed in the leak check ($t)"; exit 1; }
done
"$python" - "$work"/leaks/*.[0-9]* <<'EOF_PY'
import re, sys
mine = total = at_import = 0
for path in sys.argv[1:]:
    log = open(path, errors="replace").read()
    if re.search(r"ERROR: AddressSanitizer|runtime error|CHECK failed", log):
        sys.exit(f"sanitizer error in the leak check: {path}\n{log[:4000]}")
    if "Too many leaks" in log:
        sys.exit(f"{path}: more leaked blocks than LeakSanitizer reports; the check would be incomplete")
    for block in re.split(r"\n(?=(?:Direct|Indirect) leak of)", log):
        if block.startswith(("Direct", "Indirect")):
            total += 1
            if not re.search(r" (csrc/rnnkit/|src/bind_|src/rnnkit_module|src/buffer_pool)|_C\.cpython", block):
                continue
            if "pybind11_exec__C" in block:  # the module's own dict and functions, made once at import
                at_import += 1
                continue
            mine += 1
            print(block[:4000])
print(f"leak check: {total} blocks unfreed at exit; {at_import} of them from importing rnnkit._C (once, "
      f"CPython frees no module at exit), {mine} allocated by rnnkit after import")
sys.exit(1 if mine else 0)
EOF_PY
echo "leak check took $(( $(date +%s) - start )) s"
