// LSTM cell, forward and backward (gate rows i, f, g, o as PyTorch stores them):
//   i, f, o = sigmoid(.), g = tanh(.), c_t = f*c_{t-1} + i*g, h_t = o*tanh(c_t)
// Record per step: [i f g o] activated (R = 4); c_t is kept in the state slots.
#pragma once

#include "sequence.h"

namespace rnnkit {

struct LstmCell {
    static constexpr int G = 4, R = 4;
    static constexpr bool has_c = true;
    static constexpr bool split_records = true;  // a plane per thread: see Records
    static constexpr bool folds_hidden_bias(int) { return true; }
    static constexpr HiddenSegment hidden_segments[] = {{0, 4, 0, -1}};

    template <class T>
    static void forward(const Step<T>& st, Units u) {
        recurrent_gemm(st, u, 0, 4, st.hprev, st.a->H, true, st.rec);
        activate(st, u);
    }

    template <class T>
    RNNKIT_MULTIVERSION static void activate(const Step<T>& st, Units u) {
        const int B = st.a->B, H = st.a->H;
        for (int b = 0; b < B; ++b) {
            if (!st.valid(b)) { st.carry(b, u); continue; }
            T *i = st.col(b, 0), *f = st.col(b, 1), *g = st.col(b, 2), *o = st.col(b, 3);
            const T* c_prev = st.cprev + b * H;
            T* c = st.cout + b * H;
            T* h = st.hout + b * H;
            const T *bi = st.bias, *bf = bi + H, *bg = bi + 2 * H, *bo = bi + 3 * H;
#pragma omp simd
            for (int j = u.lo; j < u.hi; ++j) {
                const T ig = sigmoid(i[j] + bi[j]), fg = sigmoid(f[j] + bf[j]), gg = tanh_approx(g[j] + bg[j]),
                        og = sigmoid(o[j] + bo[j]);
                const T cj = fg * c_prev[j] + ig * gg;
                c[j] = cj;
                h[j] = og * tanh_approx(cj);
                i[j] = ig, f[j] = fg, g[j] = gg, o[j] = og;
            }
        }
    }

    template <class T>
    static void backward(const Step<T>& st, Units u) {
        gate_gradients(st, u);
#pragma omp barrier
        backprop_to_state(st, u, hidden_segments, 0);
    }

    template <class T>
    RNNKIT_MULTIVERSION static void gate_gradients(const Step<T>& st, Units u) {
        const int B = st.a->B, H = st.a->H;
        for (int b = 0; b < B; ++b) {
            if (!st.valid(b)) { st.no_gradient(b, u, R); continue; }
            T *i = st.col(b, 0), *f = st.col(b, 1), *g = st.col(b, 2), *o = st.col(b, 3);
            const T* c_prev = st.cprev + b * H;
            const T* c = st.cout + b * H;
            T* dh = st.dh + b * H;
            T* dc = st.dc + b * H;
#pragma omp simd
            for (int j = u.lo; j < u.hi; ++j) {
                const T tc = tanh_approx(c[j]);
                // The cell's "gradient highway": dc reaches c_{t-1} through f alone.
                const T dct = dc[j] + dh[j] * o[j] * (T(1) - tc * tc);
                const T di = dct * g[j], df = dct * c_prev[j], dg = dct * i[j], dout = dh[j] * tc;
                dc[j] = dct * f[j];
                i[j] = di * i[j] * (T(1) - i[j]);
                f[j] = df * f[j] * (T(1) - f[j]);
                g[j] = dg * (T(1) - g[j] * g[j]);
                o[j] = dout * o[j] * (T(1) - o[j]);
                dh[j] = T(0);
            }
        }
    }
};

}  // namespace rnnkit
