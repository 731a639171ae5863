# cython: language_level=3
# rnnkit's kernels for Cython: `from rnnkit.capi cimport rnnkit_api, import_rnnkit, RNNKIT_LSTM`, compile
# with include_dirs=[rnnkit.get_include()] (no link flags), then, with or without the GIL:
#
#     cdef const rnnkit_api* api = import_rnnkit()
#     status = api.forward_f32(RNNKIT_LSTM, T, B, I, H, &x[0, 0, 0], ...)   # RNNKIT_OK == 0
#
# Arguments, shapes and status codes are documented in rnnkit/c_api.h.
from cpython.pycapsule cimport PyCapsule_GetPointer
from libc.stdint cimport int64_t

cdef extern from "rnnkit/c_api.h":
    enum:
        RNNKIT_RNN_TANH
        RNNKIT_RNN_RELU
        RNNKIT_LSTM
        RNNKIT_GRU
        RNNKIT_GRU_CHO
        RNNKIT_MUT1
        RNNKIT_MUT2
        RNNKIT_MUT3
        RNNKIT_OK
        RNNKIT_INVALID_ARGUMENT
        RNNKIT_OUT_OF_MEMORY
        RNNKIT_INTERNAL_ERROR
        RNNKIT_C_API_VERSION

    ctypedef struct rnnkit_api:
        int version
        size_t (*train_workspace_size)(int cell, int T, int B, int H) noexcept nogil
        int (*forward_f32)(int cell, int T, int B, int I, int H, const float* x, const float* h0,
                           const float* c0, const float* w_ih, const float* w_hh, const float* b_ih,
                           const float* b_hh, const int64_t* lengths, int reverse, float* y, float* h_n,
                           float* c_n, float* workspace) noexcept nogil
        int (*forward_f64)(int cell, int T, int B, int I, int H, const double* x, const double* h0,
                           const double* c0, const double* w_ih, const double* w_hh, const double* b_ih,
                           const double* b_hh, const int64_t* lengths, int reverse, double* y, double* h_n,
                           double* c_n, double* workspace) noexcept nogil
        int (*backward_f32)(int cell, int T, int B, int I, int H, const float* x, const float* h0,
                            const float* c0, const float* w_ih, const float* w_hh, const float* b_ih,
                            const float* b_hh, const int64_t* lengths, int reverse, float* workspace,
                            const float* dy, const float* dh_n, const float* dc_n, float* dx, float* dh0,
                            float* dc0, float* dw_ih, float* dw_hh, float* db_ih, float* db_hh) noexcept nogil
        int (*backward_f64)(int cell, int T, int B, int I, int H, const double* x, const double* h0,
                            const double* c0, const double* w_ih, const double* w_hh, const double* b_ih,
                            const double* b_hh, const int64_t* lengths, int reverse, double* workspace,
                            const double* dy, const double* dh_n, const double* dc_n, double* dx, double* dh0,
                            double* dc0, double* dw_ih, double* dw_hh, double* db_ih, double* db_hh) noexcept nogil
        int (*step_f32)(int cell, int B, int I, int H, const float* x, const float* h, const float* c,
                        const float* w_ih, const float* w_hh, const float* b_ih, const float* b_hh,
                        float* h_out, float* c_out) noexcept nogil
        int (*step_f64)(int cell, int B, int I, int H, const double* x, const double* h, const double* c,
                        const double* w_ih, const double* w_hh, const double* b_ih, const double* b_hh,
                        double* h_out, double* c_out) noexcept nogil
        const char* (*error_message)(int status) noexcept nogil
        # version 2
        int (*forward_half_w_hh_f32)(int cell, int T, int B, int I, int H, const float* x, const float* h0,
                                     const float* c0, const float* w_ih, const float* w_hh, const float* b_ih,
                                     const float* b_hh, const int64_t* lengths, int reverse, float* y,
                                     float* h_n, float* c_n) noexcept nogil


cdef inline const rnnkit_api* import_rnnkit() except NULL:
    """The table of rnnkit's kernels, from the installed package (imports rnnkit once)."""
    import rnnkit._C
    cdef const rnnkit_api* api = <const rnnkit_api*> PyCapsule_GetPointer(rnnkit._C._C_API, b"rnnkit._C._C_API")
    # The table only ever grows at its end: a newer one serves this extension, an older one lacks fields.
    if api.version < RNNKIT_C_API_VERSION:
        raise ImportError(f"rnnkit C API version {api.version}, this extension was built for {RNNKIT_C_API_VERSION}")
    return api
