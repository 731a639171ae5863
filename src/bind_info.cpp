// rnnkit._C.build_info and rnnkit._C.kernels: how this binary was compiled and which kernels its
// run-time dispatch picked on this CPU (rnnkit info prints both for bug reports).
#include <pybind11/pybind11.h>

#include "rnnkit/cells/activations.h"
#include "rnnkit/gemm/packed_gemm.h"
#include "rnnkit/gemm/panel_gemv.h"

namespace py = pybind11;

#ifndef RNNKIT_COMPILE_ARGS  // setup.py passes its own compile arguments; another build may not
#define RNNKIT_COMPILE_ARGS "unknown"
#endif

namespace {

// The instruction sets the whole binary may use, whatever the dispatch: more than SSE2 here means a
// build for one CPU family (RNNKIT_NATIVE=1), not a portable one.
py::list baseline_isa() {
    py::list isa;
#ifdef __SSE4_2__
    isa.append("sse4.2");
#endif
#ifdef __AVX__
    isa.append("avx");
#endif
#ifdef __AVX2__
    isa.append("avx2");
#endif
#ifdef __FMA__
    isa.append("fma");
#endif
#ifdef __AVX512F__
    isa.append("avx512f");
#endif
    return isa;
}

py::dict build_info() {
    py::dict d;
#if defined(__clang__)
    d["compiler"] = "clang " __clang_version__;
#elif defined(__GNUC__)
    d["compiler"] = "gcc " __VERSION__;
#else
    d["compiler"] = "unknown";
#endif
    d["compile_args"] = RNNKIT_COMPILE_ARGS;
    d["cplusplus"] = long(__cplusplus);
#ifdef _OPENMP
    d["openmp"] = long(_OPENMP);
#else
    d["openmp"] = py::none();
#endif
    d["baseline_isa"] = baseline_isa();
    return d;
}

py::dict kernels() {
    py::dict d;
    d["packed_gemm"] = rnnkit::packed_gemm_kernel();
    d["sampler_gemv"] = rnnkit::panel_gemv_kernel();
    d["sampler_int8"] = rnnkit::panel_gemv_int8_kernel();
    d["pointwise"] = rnnkit::multiversion_clone();
    return d;
}

}  // namespace

void register_info(py::module_& m) {
    m.def("build_info", &build_info, "How this binary was compiled: compiler, rnnkit's compile arguments, "
                                     "C++ and OpenMP versions, the instruction sets allowed everywhere.");
    m.def("kernels", &kernels, "The kernels the run-time dispatch picked on this CPU.");
}
