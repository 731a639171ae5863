"""Build of rnnkit's native extension: the C++17/OpenMP kernels of csrc/ bound by src/ as rnnkit._C.

GEMM comes from the scipy-openblas32 wheel (pinned, a build and run dependency). Under pip's build
isolation that wheel's lib directory disappears after the build, so the extension finds the library
through an rpath into the installed wheel, and rnnkit imports scipy_openblas32 first (which loads it).

The default build is portable: the baseline is plain x86-64 and the AVX2/AVX-512 kernels
(*_avx2.cpp, *_avx512.cpp, RNNKIT_MULTIVERSION functions) are picked at run time by CPU checks.
RNNKIT_NATIVE=1 compiles everything for this machine's CPU (-march=native): faster here, not portable.
RNNKIT_WERROR=1 turns compiler warnings into errors (CI sets it; a user's newer compiler must not fail
an install over a new warning).
"""

import glob
import os

import scipy_openblas32
from pybind11.setup_helpers import ParallelCompile, Pybind11Extension
from setuptools import setup

ParallelCompile("NPY_NUM_BUILD_JOBS").install()

compile_args = ["-fopenmp", "-O3", "-fno-math-errno", "-fno-trapping-math", "-Wall", "-Wextra"]
if os.environ.get("RNNKIT_NATIVE") == "1":
    compile_args.append("-march=native")
if os.environ.get("RNNKIT_WERROR") == "1":
    compile_args.append("-Werror")

ext = Pybind11Extension(
    "rnnkit._C",
    sources=sorted(glob.glob("src/*.cpp") + glob.glob("csrc/rnnkit/**/*.cpp", recursive=True)),
    include_dirs=["csrc", "python/rnnkit/include", scipy_openblas32.get_include_dir()],
    library_dirs=[scipy_openblas32.get_lib_dir()],
    libraries=[scipy_openblas32.get_library()],
    # rnnkit info reports these (rnnkit._C.build_info()).
    define_macros=[("RNNKIT_COMPILE_ARGS", '"' + " ".join(compile_args) + '"')],
    extra_compile_args=compile_args,
    extra_link_args=["-fopenmp", "-Wl,-rpath,$ORIGIN/../scipy_openblas32/lib"],
    cxx_std=17,
)

setup(ext_modules=[ext])
