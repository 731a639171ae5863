"""The portable build runs on any x86-64 CPU: instructions past the x86-64 baseline appear only in the
kernels that the run-time dispatch picks by CPU checks, and the dispatch picks what the CPU has.
(tests/emulated_cpu.sh runs the kernels on emulated older CPUs.)"""

import platform
import re
import shutil
import subprocess
from collections import defaultdict

import numpy as np
import pytest

from rnnkit import _C

pytestmark = pytest.mark.skipif(platform.machine() != "x86_64", reason="x86-64 dispatch")

# Functions allowed to use AVX/AVX2/AVX-512: the clones of RNNKIT_MULTIVERSION functions, and the
# kernels of the *_avx2.cpp / *_avx512.cpp files (their names or namespaces say the instruction set).
DISPATCHED = re.compile(r"\[clone \.arch_x86_64_v[34]|avx2|avx512")
# VEX/EVEX instructions all start with v (AT&T syntax); the BMI/LZCNT/MOVBE ones are not x86-64 either.
BEYOND_BASELINE = re.compile(
    r"^\s*[0-9a-f]+:\s+(v[a-z0-9]+|andn|bextr|blsi|blsmsk|blsr|bzhi|lzcnt|tzcnt|mulx|pdep|pext|rorx|sarx|shlx|shrx|movbe)\b"
)


def cpu_features():
    try:
        from numpy._core._multiarray_umath import __cpu_features__
    except ImportError:  # numpy < 2
        from numpy.core._multiarray_umath import __cpu_features__
    return {k for k, v in __cpu_features__.items() if v}


def test_dispatch_picks_what_the_cpu_has():
    # numpy's own CPUID probe, an independent reading of the same CPU.
    f, k = cpu_features(), _C.kernels()
    avx512 = {"AVX512F", "AVX512VL", "AVX512DQ", "AVX512BW"} <= f
    expected_gemm = "avx512" if avx512 else "avx2" if {"AVX2", "FMA3"} <= f else "generic"
    assert k["packed_gemm"] == expected_gemm
    assert k["sampler_gemv"] == ("avx512" if {"AVX512F", "F16C"} <= f else "portable")
    int8 = {"AVX512F", "F16C", "AVX512BW", "AVX512DQ"} <= f
    assert k["sampler_int8"] == ("avx512-vnni" if int8 and "AVX512VNNI" in f else "avx512" if int8 else "portable")
    assert k["pointwise"] == ("x86-64-v4" if "X86_V4" in f else "x86-64-v3" if "X86_V3" in f else "baseline")


@pytest.mark.skipif(shutil.which("objdump") is None, reason="needs objdump (binutils)")
def test_only_dispatched_kernels_use_instructions_past_x86_64():
    if _C.build_info()["baseline_isa"]:
        pytest.skip("a RNNKIT_NATIVE=1 build targets this CPU family on purpose")
    asm = subprocess.run(["objdump", "-d", "--no-show-raw-insn", "-C", _C.__file__], capture_output=True,
                         text=True, check=True).stdout
    using = defaultdict(set)  # function -> mnemonics past the baseline
    function = None
    for line in asm.splitlines():
        head = re.match(r"^[0-9a-f]+ <(.*)>:$", line)
        if head:
            function = head.group(1)
            continue
        insn = BEYOND_BASELINE.match(line)
        if insn:
            using[function].add(insn.group(1))
    outside = {fn: sorted(m)[:5] for fn, m in using.items() if not DISPATCHED.search(fn)}
    assert not outside, f"instructions past x86-64 outside the dispatched kernels: {outside}"
    # The check sees the kernels it allows (else it could not fail): AVX-512 (zmm) and AVX2 ones.
    assert any("packed_gemm_avx512" in fn for fn in using) and any("packed_gemm_avx2" in fn for fn in using)
    assert any(".arch_x86_64_v3" in fn for fn in using) and any(".arch_x86_64_v4" in fn for fn in using)
