"""Build of rnnkit's native extension: the C++17/OpenMP kernels of csrc/ bound by src/ as rnnkit._C.

GEMM comes from the scipy-openblas32 wheel (pinned, a build and run dependency). Under pip's build
isolation that wheel's lib directory disappears after the build, so the extension finds the library
through an rpath into the installed wheel, and rnnkit imports scipy_openblas32 first (which loads it).

RNNKIT_NATIVE=1 compiles for this machine's CPU (-march=native): faster here, not portable.
"""
import glob
import os

import scipy_openblas32
from pybind11.setup_helpers import ParallelCompile, Pybind11Extension
from setuptools import setup

ParallelCompile("NPY_NUM_BUILD_JOBS").install()

compile_args = ["-fopenmp", "-O3", "-fno-math-errno", "-fno-trapping-math"]
if os.environ.get("RNNKIT_NATIVE") == "1":
    compile_args.append("-march=native")

ext = Pybind11Extension(
    "rnnkit._C",
    sources=sorted(glob.glob("src/*.cpp") + glob.glob("csrc/rnnkit/**/*.cpp", recursive=True)),
    include_dirs=["csrc", "python/rnnkit/include", scipy_openblas32.get_include_dir()],
    library_dirs=[scipy_openblas32.get_lib_dir()],
    libraries=[scipy_openblas32.get_library()],
    extra_compile_args=compile_args,
    extra_link_args=["-fopenmp", "-Wl,-rpath,$ORIGIN/../scipy_openblas32/lib"],
    cxx_std=17,
)

setup(ext_modules=[ext])
