/* rnnkit's C API: the kernels of one layer in one direction, callable from C, C++ and Cython.
 *
 * From Python extensions (Cython or C): the table of functions below is published by the installed
 * package as the capsule `rnnkit._C._C_API`; `cimport rnnkit.capi` (rnnkit/capi.pxd) fetches it, so an
 * extension needs this header (rnnkit.get_include()) but no link flags. From native code: link the
 * kernels of csrc/ and call the rnnkit_* functions directly.
 *
 * Shapes are those of csrc/rnnkit/rnnkit.h (row-major, contiguous, time-major):
 *   x [T,B,I], h0/c0 [B,H], w_ih [Gi*H,I], w_hh [Gh*H,H], b_ih [Bi*H], b_hh [Bh*H] (NULL: no bias),
 *   lengths [B] in 1..T or NULL, y [T,B,H], h_n/c_n [B,H]; per cell Gi/Gh/Bi/Bh =
 *   RNN 1/1/1/1, LSTM 4/4/4/4 (rows i,f,g,o), GRU and GRU-Cho 3/3/3/3 (rows r,z,n),
 *   MUT1 2/2/3/0, MUT2 2/3/3/0, MUT3 3/3/3/0 (rows z,r,h of the weights they have; b_hh NULL, and
 *   MUT1 and MUT2 need I == H). c0, c_n, dc_n, dc0 only for RNNKIT_LSTM (NULL otherwise).
 * Every function returns RNNKIT_OK or a negative code; rnnkit_error_message(code) names it.
 * The kernels use OpenMP threads (see set_num_threads) and never call back into Python: safe to
 * call without the GIL. */
#ifndef RNNKIT_C_API_H
#define RNNKIT_C_API_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The cells, in the order of the kernels' registry (csrc/rnnkit/cells/registry.h; tests/test_cells.py compares). */
enum rnnkit_cell {
    RNNKIT_RNN_TANH = 0,
    RNNKIT_RNN_RELU = 1,
    RNNKIT_LSTM = 2,
    RNNKIT_GRU = 3,
    RNNKIT_GRU_CHO = 4,
    RNNKIT_MUT1 = 5,
    RNNKIT_MUT2 = 6,
    RNNKIT_MUT3 = 7,
};
#define rnnkit_mode rnnkit_cell /* the enum's name before MUT1-3 */

enum rnnkit_status {
    RNNKIT_OK = 0,
    RNNKIT_INVALID_ARGUMENT = -1, /* unknown cell, a size < 1, a required pointer NULL, a length out of 1..T */
    RNNKIT_OUT_OF_MEMORY = -2,
    RNNKIT_INTERNAL_ERROR = -3,
};

/* The table's version: 2 appended forward_half_w_hh_f32. Fields are only ever appended, so a table of a
 * later version serves an extension built for an earlier one. */
#define RNNKIT_C_API_VERSION 2

/* Elements (not bytes) of the workspace a training forward fills and its backward consumes; 0 if the
 * arguments are invalid. Inference (workspace NULL) needs none. */
size_t rnnkit_train_workspace_size(int cell, int T, int B, int H);

int rnnkit_forward_f32(int cell, int T, int B, int I, int H, const float* x, const float* h0, const float* c0,
                       const float* w_ih, const float* w_hh, const float* b_ih, const float* b_hh,
                       const int64_t* lengths, int reverse, float* y, float* h_n, float* c_n, float* workspace);
int rnnkit_forward_f64(int cell, int T, int B, int I, int H, const double* x, const double* h0, const double* c0,
                       const double* w_ih, const double* w_hh, const double* b_ih, const double* b_hh,
                       const int64_t* lengths, int reverse, double* y, double* h_n, double* c_n,
                       double* workspace);

/* Inference (no workspace) with W_hh read as IEEE half: rounded to nearest even, while W_ih, biases,
 * states and every sum stay float (Python: kernels.forward(..., recurrent_weights="float16")). A batch of
 * one streams W_hh every step, and half of it is half the bytes. RNNKIT_INVALID_ARGUMENT also when a value
 * of W_hh has no half (magnitude >= 65520, inf, NaN). */
int rnnkit_forward_half_w_hh_f32(int cell, int T, int B, int I, int H, const float* x, const float* h0,
                                 const float* c0, const float* w_ih, const float* w_hh, const float* b_ih,
                                 const float* b_hh, const int64_t* lengths, int reverse, float* y, float* h_n,
                                 float* c_n);

/* Backpropagation through time for the training forward that filled `workspace` (same arguments). The
 * workspace is consumed. dh_n, dc_n may be NULL (zeros); db_ih, db_hh NULL when there is no bias. */
int rnnkit_backward_f32(int cell, int T, int B, int I, int H, const float* x, const float* h0, const float* c0,
                        const float* w_ih, const float* w_hh, const float* b_ih, const float* b_hh,
                        const int64_t* lengths, int reverse, float* workspace, const float* dy,
                        const float* dh_n, const float* dc_n, float* dx, float* dh0, float* dc0, float* dw_ih,
                        float* dw_hh, float* db_ih, float* db_hh);
int rnnkit_backward_f64(int cell, int T, int B, int I, int H, const double* x, const double* h0,
                        const double* c0, const double* w_ih, const double* w_hh, const double* b_ih,
                        const double* b_hh, const int64_t* lengths, int reverse, double* workspace,
                        const double* dy, const double* dh_n, const double* dc_n, double* dx, double* dh0,
                        double* dc0, double* dw_ih, double* dw_hh, double* db_ih, double* db_hh);

/* One inference step: x [B,I], state h (c) [B,H] -> h_out (c_out), which may alias h (c). */
int rnnkit_step_f32(int cell, int B, int I, int H, const float* x, const float* h, const float* c,
                    const float* w_ih, const float* w_hh, const float* b_ih, const float* b_hh, float* h_out,
                    float* c_out);
int rnnkit_step_f64(int cell, int B, int I, int H, const double* x, const double* h, const double* c,
                    const double* w_ih, const double* w_hh, const double* b_ih, const double* b_hh,
                    double* h_out, double* c_out);

const char* rnnkit_error_message(int status);

/* The table published as the capsule rnnkit._C._C_API. */
typedef struct {
    int version; /* RNNKIT_C_API_VERSION */
    size_t (*train_workspace_size)(int, int, int, int);
    int (*forward_f32)(int, int, int, int, int, const float*, const float*, const float*, const float*,
                       const float*, const float*, const float*, const int64_t*, int, float*, float*, float*,
                       float*);
    int (*forward_f64)(int, int, int, int, int, const double*, const double*, const double*, const double*,
                       const double*, const double*, const double*, const int64_t*, int, double*, double*,
                       double*, double*);
    int (*backward_f32)(int, int, int, int, int, const float*, const float*, const float*, const float*,
                        const float*, const float*, const float*, const int64_t*, int, float*, const float*,
                        const float*, const float*, float*, float*, float*, float*, float*, float*, float*);
    int (*backward_f64)(int, int, int, int, int, const double*, const double*, const double*, const double*,
                        const double*, const double*, const double*, const int64_t*, int, double*,
                        const double*, const double*, const double*, double*, double*, double*, double*,
                        double*, double*, double*);
    int (*step_f32)(int, int, int, int, const float*, const float*, const float*, const float*, const float*,
                    const float*, const float*, float*, float*);
    int (*step_f64)(int, int, int, int, const double*, const double*, const double*, const double*,
                    const double*, const double*, const double*, double*, double*);
    const char* (*error_message)(int);
    /* version 2 */
    int (*forward_half_w_hh_f32)(int, int, int, int, int, const float*, const float*, const float*, const float*,
                                 const float*, const float*, const float*, const int64_t*, int, float*, float*,
                                 float*);
} rnnkit_api;

#ifdef __cplusplus
}
#endif

#endif /* RNNKIT_C_API_H */
