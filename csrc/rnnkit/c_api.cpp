// The C API (rnnkit/c_api.h, shipped inside the Python package so that extensions can compile against
// it): argument checks, then the C++ kernels; C++ exceptions become status codes at this boundary.
#include "rnnkit/c_api.h"

#include <new>
#include <stdexcept>

#include "rnnkit/rnnkit.h"

namespace {

using rnnkit::CellId;

// Whether the cell carries a cell state beside h (an unknown id has none).
bool has_cell_state(int cell) { return rnnkit::valid_cell(cell) && rnnkit::cell_info(CellId(cell)).states == 2; }

template <class T>
int checked_args(int cell, int T_, int B, int I, int H, const T* x, const T* h0, const T* c0, const T* w_ih,
                 const T* w_hh, const T* b_ih, const T* b_hh, const int64_t* lengths, int reverse,
                 rnnkit::SeqArgs<T>& out) {
    if (!rnnkit::valid_cell(cell) || T_ < 1 || B < 1 || I < 1 || H < 1 || !x || !h0 || !w_ih || !w_hh)
        return RNNKIT_INVALID_ARGUMENT;
    const rnnkit::CellInfo info = rnnkit::cell_info(CellId(cell));
    const bool hh_bias_needed = b_ih && info.bias_hh > 0;
    if ((info.states == 2 && !c0) || (bool(b_hh) != hh_bias_needed) || (info.raw_input && I != H))
        return RNNKIT_INVALID_ARGUMENT;
    if (lengths)
        for (int b = 0; b < B; ++b)
            if (lengths[b] < 1 || lengths[b] > T_) return RNNKIT_INVALID_ARGUMENT;
    out = {CellId(cell), T_, B, I, H, x, h0, info.states == 2 ? c0 : nullptr, w_ih, w_hh, b_ih, b_hh, lengths,
           reverse != 0};
    return RNNKIT_OK;
}

template <class F>
int guarded(F&& f) {
    try {
        f();
        return RNNKIT_OK;
    } catch (const std::bad_alloc&) {
        return RNNKIT_OUT_OF_MEMORY;
    } catch (const std::invalid_argument&) {  // what only the kernels can see: a W_hh value with no half
        return RNNKIT_INVALID_ARGUMENT;
    } catch (...) {
        return RNNKIT_INTERNAL_ERROR;
    }
}

template <class T>
int forward(int cell, int T_, int B, int I, int H, const T* x, const T* h0, const T* c0, const T* w_ih,
            const T* w_hh, const T* b_ih, const T* b_hh, const int64_t* lengths, int reverse, T* y, T* h_n,
            T* c_n, T* workspace, bool half_w_hh = false) {
    rnnkit::SeqArgs<T> a;
    if (int s = checked_args(cell, T_, B, I, H, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, reverse, a)) return s;
    if (!h_n || (has_cell_state(cell) && !c_n)) return RNNKIT_INVALID_ARGUMENT;
    a.half_w_hh = half_w_hh;
    return guarded([&] { rnnkit::forward<T>(a, y, h_n, c_n, workspace); });
}

template <class T>
int backward(int cell, int T_, int B, int I, int H, const T* x, const T* h0, const T* c0, const T* w_ih,
             const T* w_hh, const T* b_ih, const T* b_hh, const int64_t* lengths, int reverse, T* workspace,
             const T* dy, const T* dh_n, const T* dc_n, T* dx, T* dh0, T* dc0, T* dw_ih, T* dw_hh, T* db_ih,
             T* db_hh) {
    rnnkit::SeqArgs<T> a;
    if (int s = checked_args(cell, T_, B, I, H, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, reverse, a)) return s;
    if (!workspace || !dy || !dx || !dh0 || !dw_ih || !dw_hh || (has_cell_state(cell) && !dc0) ||
        (b_ih && (!db_ih || !db_hh)))
        return RNNKIT_INVALID_ARGUMENT;
    return guarded([&] {
        rnnkit::backward<T>(a, workspace, dy, dh_n, has_cell_state(cell) ? dc_n : nullptr, dx, dh0, dc0, dw_ih,
                            dw_hh, b_ih ? db_ih : nullptr, b_ih ? db_hh : nullptr);
    });
}

template <class T>
int step(int cell, int B, int I, int H, const T* x, const T* h, const T* c, const T* w_ih, const T* w_hh,
         const T* b_ih, const T* b_hh, T* h_out, T* c_out) {
    rnnkit::SeqArgs<T> a;
    if (int s = checked_args(cell, 1, B, I, H, x, h, c, w_ih, w_hh, b_ih, b_hh, nullptr, 0, a)) return s;
    if (!h_out || (has_cell_state(cell) && !c_out)) return RNNKIT_INVALID_ARGUMENT;
    return guarded([&] { rnnkit::step<T>(a, h_out, c_out); });
}

}  // namespace

extern "C" {

size_t rnnkit_train_workspace_size(int cell, int T, int B, int H) {
    if (!rnnkit::valid_cell(cell) || T < 1 || B < 1 || H < 1) return 0;
    return rnnkit::train_workspace_size(CellId(cell), T, B, H);
}

int rnnkit_forward_f32(int cell, int T, int B, int I, int H, const float* x, const float* h0, const float* c0,
                       const float* w_ih, const float* w_hh, const float* b_ih, const float* b_hh,
                       const int64_t* lengths, int reverse, float* y, float* h_n, float* c_n, float* workspace) {
    return forward(cell, T, B, I, H, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, reverse, y, h_n, c_n, workspace);
}

int rnnkit_forward_f64(int cell, int T, int B, int I, int H, const double* x, const double* h0, const double* c0,
                       const double* w_ih, const double* w_hh, const double* b_ih, const double* b_hh,
                       const int64_t* lengths, int reverse, double* y, double* h_n, double* c_n,
                       double* workspace) {
    return forward(cell, T, B, I, H, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, reverse, y, h_n, c_n, workspace);
}

int rnnkit_forward_half_w_hh_f32(int cell, int T, int B, int I, int H, const float* x, const float* h0,
                                 const float* c0, const float* w_ih, const float* w_hh, const float* b_ih,
                                 const float* b_hh, const int64_t* lengths, int reverse, float* y, float* h_n,
                                 float* c_n) {
    return forward(cell, T, B, I, H, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, reverse, y, h_n, c_n,
                   static_cast<float*>(nullptr), true);
}

int rnnkit_backward_f32(int cell, int T, int B, int I, int H, const float* x, const float* h0, const float* c0,
                        const float* w_ih, const float* w_hh, const float* b_ih, const float* b_hh,
                        const int64_t* lengths, int reverse, float* workspace, const float* dy,
                        const float* dh_n, const float* dc_n, float* dx, float* dh0, float* dc0, float* dw_ih,
                        float* dw_hh, float* db_ih, float* db_hh) {
    return backward(cell, T, B, I, H, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, reverse, workspace, dy, dh_n,
                    dc_n, dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh);
}

int rnnkit_backward_f64(int cell, int T, int B, int I, int H, const double* x, const double* h0,
                        const double* c0, const double* w_ih, const double* w_hh, const double* b_ih,
                        const double* b_hh, const int64_t* lengths, int reverse, double* workspace,
                        const double* dy, const double* dh_n, const double* dc_n, double* dx, double* dh0,
                        double* dc0, double* dw_ih, double* dw_hh, double* db_ih, double* db_hh) {
    return backward(cell, T, B, I, H, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, reverse, workspace, dy, dh_n,
                    dc_n, dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh);
}

int rnnkit_step_f32(int cell, int B, int I, int H, const float* x, const float* h, const float* c,
                    const float* w_ih, const float* w_hh, const float* b_ih, const float* b_hh, float* h_out,
                    float* c_out) {
    return step(cell, B, I, H, x, h, c, w_ih, w_hh, b_ih, b_hh, h_out, c_out);
}

int rnnkit_step_f64(int cell, int B, int I, int H, const double* x, const double* h, const double* c,
                    const double* w_ih, const double* w_hh, const double* b_ih, const double* b_hh,
                    double* h_out, double* c_out) {
    return step(cell, B, I, H, x, h, c, w_ih, w_hh, b_ih, b_hh, h_out, c_out);
}

const char* rnnkit_error_message(int status) {
    switch (status) {
        case RNNKIT_OK: return "ok";
        case RNNKIT_INVALID_ARGUMENT:
            return "invalid argument (cell, a size < 1, a missing array, a length out of 1..T, or a W_hh value of "
                   "magnitude >= 65520, inf or NaN for a half W_hh)";
        case RNNKIT_OUT_OF_MEMORY: return "out of memory";
        case RNNKIT_INTERNAL_ERROR: return "internal error";
    }
    return "unknown rnnkit status";
}

}  // extern "C"
