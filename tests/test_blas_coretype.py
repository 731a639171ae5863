"""rnnkit's own OpenBLAS takes its kernels from the CPU whatever OPENBLAS_CORETYPE says (which holds
OpenBLAS to older kernels and which this machine and CI set), RNNKIT_BLAS_CORETYPE forces one, and
NumPy's own OpenBLAS copy and the rest of the process still see OPENBLAS_CORETYPE. Each case runs in a
fresh interpreter, because OpenBLAS reads the variable once, when it loads."""
from __future__ import annotations

import json
import os
import platform
import subprocess
import sys

import pytest

import rnnkit

pytest.importorskip("threadpoolctl")
pytestmark = pytest.mark.skipif(platform.machine().lower() not in ("x86_64", "amd64"),
                                reason="the core types named here are x86 ones")

PACKAGE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(rnnkit.__file__)))

# Prints, as JSON: rnnkit's and NumPy's OpenBLAS core types, how rnnkit's was chosen, and the variable as
# the process sees it afterwards (numpy imported before rnnkit, or after, as argv[1] says).
PROBE = r"""
import json, os, sys
if sys.argv[1] == "numpy-first":
    import numpy
if sys.argv[2] == "scipy-openblas-first":
    import scipy_openblas32
import rnnkit, numpy
from rnnkit import _blas_load
from rnnkit.bench import gemm_kernels
from threadpoolctl import threadpool_info
ours = _blas_load.library_dir()
cores = {"rnnkit": None, "numpy": None}
for pool in threadpool_info():
    if pool["user_api"] == "blas" and pool["internal_api"] == "openblas":
        owner = "rnnkit" if os.path.realpath(pool["filepath"]).startswith(ours) else "numpy"
        cores[owner] = pool["architecture"]
print(json.dumps({"cores": cores, "variable": os.environ.get("OPENBLAS_CORETYPE"),
                  "source": rnnkit.BLAS_LOAD.source, "corename": _blas_load.corename(),
                  "cpu_isa": gemm_kernels.cpu_isa(),
                  "warnings": gemm_kernels.describe(threadpool_info())["warnings"]}))
"""


def probe(env_changes, numpy_first=False, scipy_openblas_first=False):
    env = {k: v for k, v in os.environ.items() if k not in ("OPENBLAS_CORETYPE", "RNNKIT_BLAS_CORETYPE")}
    env.update(env_changes)
    env["PYTHONPATH"] = os.pathsep.join([PACKAGE_DIR] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
    args = ["numpy-first" if numpy_first else "rnnkit-first",
            "scipy-openblas-first" if scipy_openblas_first else "-"]
    res = subprocess.run([sys.executable, "-c", PROBE, *args], env=env, capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    return json.loads(res.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def detected():
    """The core type OpenBLAS detects from this CPU (no variable set)."""
    out = probe({})
    assert out["source"] == "cpu" and out["variable"] is None
    return out["cores"]["rnnkit"]


# Nehalem is below every CPU with AVX, so a variable that reached rnnkit's copy would show; Haswell is the
# value this machine sets (below the AVX-512 CPUs the benchmarks run on).
@pytest.mark.parametrize("numpy_first", [False, True], ids=["rnnkit-first", "numpy-first"])
@pytest.mark.parametrize("variable", ["Haswell", "Nehalem"])
def test_rnnkit_takes_the_detected_core_type_and_others_keep_the_variable(detected, variable, numpy_first):
    out = probe({"OPENBLAS_CORETYPE": variable}, numpy_first=numpy_first)
    assert out["cores"]["rnnkit"] == detected == out["corename"]
    assert out["source"] == "cpu"
    assert out["variable"] == variable  # restored for the rest of the process
    if out["cores"]["numpy"] is not None:  # NumPy on OpenBLAS (the PyPI wheels): its own copy obeys the variable
        assert out["cores"]["numpy"].lower() == variable.lower()
    assert not any("rnnkit's kernels" in w for w in out["warnings"])


def test_rnnkit_blas_coretype_forces_one_on_rnnkit_only(detected):
    out = probe({"OPENBLAS_CORETYPE": "Haswell", "RNNKIT_BLAS_CORETYPE": "Nehalem"}, numpy_first=True)
    assert out["cores"]["rnnkit"] == "Nehalem" and out["source"] == "RNNKIT_BLAS_CORETYPE"
    assert out["variable"] == "Haswell"
    if out["cores"]["numpy"] is not None:
        assert out["cores"]["numpy"] == "Haswell"
    if out["cpu_isa"] in ("avx", "avx2", "avx512"):  # Nehalem kernels are below such a CPU: the bench says so
        assert any(w.startswith("warning: rnnkit's kernels ran on openblas") and "Nehalem" in w
                   for w in out["warnings"])


def test_an_openblas_loaded_before_rnnkit_keeps_its_choice_and_is_reported(detected):
    out = probe({"OPENBLAS_CORETYPE": "Nehalem"}, scipy_openblas_first=True)
    assert out["source"] == "already loaded" and out["cores"]["rnnkit"] == "Nehalem"
    assert rnnkit._blas_load.BlasLoad("already loaded").describe().startswith("chosen when scipy_openblas32")


def test_info_reports_the_core_type_and_how_it_was_chosen():
    from rnnkit import info

    report = info.collect()
    assert report["blas_core_type"]["rnnkit"] == rnnkit._blas_load.corename()
    assert report["blas_core_type"]["how"] == rnnkit.BLAS_LOAD.describe()
    assert "rnnkit's blas core type: " in info.format_info(report)
