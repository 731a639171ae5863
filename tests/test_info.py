"""`rnnkit info` and `python -m rnnkit`: the report for bug reports, and the one version source."""

import json
import os
import re
import subprocess
import sys
from importlib import metadata
from pathlib import Path

import pytest

import rnnkit
from rnnkit import _C, cli, info

PACKED_GEMM = {"avx512", "avx2", "generic"}
SAMPLER = {"avx512", "portable"}
SAMPLER_INT8 = {"avx512-vnni", "avx512", "portable"}
POINTWISE = {"x86-64-v4", "x86-64-v3", "baseline"}


def test_info_reports_version_build_kernels_blas_and_threads(capsys):
    assert cli.main(["info"]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"rnnkit {rnnkit.__version__} (")
    assert f"compile args: {_C.build_info()['compile_args']}" in out
    k = _C.kernels()
    assert f"packed_gemm {k['packed_gemm']}, sampler_gemv {k['sampler_gemv']}, " in out
    assert f"openmp threads (rnnkit.get_num_threads): {rnnkit.get_num_threads()}" in out
    # rnnkit's own OpenBLAS (scipy-openblas32) with the core type it chose and its threads
    assert re.search(r"openblas [\d.]+, threads \d+, core type \w+.*\n\s+\S*libscipy_openblas\.so", out), out


def test_info_json_is_complete_and_consistent(capsys):
    assert cli.main(["info", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["rnnkit"] == rnnkit.__version__
    assert doc["kernels"]["packed_gemm"] in PACKED_GEMM
    assert doc["kernels"]["sampler_gemv"] in SAMPLER
    assert doc["kernels"]["sampler_int8"] in SAMPLER_INT8
    assert doc["kernels"]["pointwise"] in POINTWISE
    assert doc["openmp_threads"] == rnnkit.get_num_threads()
    assert doc["build"]["openmp"] >= 201511 and doc["build"]["cplusplus"] >= 201703
    ours = [p for p in doc["blas"] if os.path.basename(p["filepath"]).startswith("libscipy_openblas.")]
    assert len(ours) == 1 and ours[0]["internal_api"] == "openblas" and ours[0]["num_threads"] >= 1
    assert ours[0]["architecture"]  # the core type OpenBLAS picked (OPENBLAS_CORETYPE or its own probe)
    assert any("gomp" in os.path.basename(p["filepath"]) for p in doc["openmp"])


def test_compile_args_match_the_baseline_isa():
    # A portable build allows nothing past x86-64 outside the dispatched kernels; RNNKIT_NATIVE=1 does.
    b = _C.build_info()
    assert "-O3" in b["compile_args"] and "-Wextra" in b["compile_args"]
    assert ("-march=native" in b["compile_args"]) == bool(b["baseline_isa"])


def test_python_m_rnnkit_prints_info_and_dispatches_commands():
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    bare = subprocess.run([sys.executable, "-m", "rnnkit"], capture_output=True, text=True, env=env, check=True)
    assert bare.stdout.startswith(f"rnnkit {rnnkit.__version__} (") and "kernels on this cpu:" in bare.stdout
    version = subprocess.run([sys.executable, "-m", "rnnkit", "--version"], capture_output=True, text=True,
                             env=env, check=True)
    assert version.stdout.strip() == f"rnnkit {rnnkit.__version__}"
    bad = subprocess.run([sys.executable, "-m", "rnnkit", "no-such-command"], capture_output=True, text=True,
                         env=env)
    assert bad.returncode == 2 and "unknown command 'no-such-command'" in bad.stderr


def test_info_is_a_listed_command(capsys):
    assert cli.main(["--help"]) == 0
    assert re.search(r"^\s+info\s+version, build flags", capsys.readouterr().out, re.M)


def test_version_is_the_distributions():
    """The installed distribution's version is rnnkit.__version__ (both read python/rnnkit/_version.py)."""
    try:
        dist = metadata.distribution("rnnkit")
        installed = Path(str(dist.locate_file("rnnkit/__init__.py"))).resolve() == Path(rnnkit.__file__).resolve()
    except metadata.PackageNotFoundError:
        installed = False
    if os.environ.get("RNNKIT_TEST_INSTALLED") == "1":  # set by tests/wheel.sh
        assert installed and f"{os.sep}site-packages{os.sep}" in rnnkit.__file__, rnnkit.__file__
    if not installed:
        pytest.skip("rnnkit is imported from a source tree, not from an installed distribution")
    assert dist.version == rnnkit.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+([ab]|rc|\.dev|\.post)?\d*", rnnkit.__version__)
