// LSTM cell (gate rows i, f, g, o as PyTorch stores them):
//   i, f, o = sigmoid(.), g = tanh(.), c_t = f*c_{t-1} + i*g, h_t = o*tanh(c_t)
// Record per step: [i f g o] activated (R = 4); c_t is kept in the state slots.
#pragma once

#include "rnnkit/loop/cell_step.h"

namespace rnnkit {

struct LstmCell {
    static constexpr const char* name = "lstm";
    static constexpr int gates_ih = 4, gates_hh = 4, R = 4, states = 2, phases = 1, input_grad_col = -1;
    static constexpr bool split_records = true;  // a plane per thread: see records.h
    static constexpr std::array<int, 4> bias_ih_cols{0, 1, 2, 3}, bias_hh_cols{0, 1, 2, 3};
    static constexpr std::array<Product, 1> products{{{0, 4, 0, kPrevState, 0, true}}};

    template <class T>
    RNNKIT_MULTIVERSION static void forward(int, const Step<T>& st, Units u) {
        const int B = st.a->B, H = st.a->H;
        for (int b = 0; b < B; ++b) {
            if (!st.valid(b)) { st.carry(b, u); continue; }
            T *i = st.col(b, 0), *f = st.col(b, 1), *g = st.col(b, 2), *o = st.col(b, 3);
            const T* c_prev = st.cprev + b * H;
            T* c = st.cout + b * H;
            T* h = st.hout + b * H;
            const T *bi = st.bias_of(0), *bf = st.bias_of(1), *bg = st.bias_of(2), *bo = st.bias_of(3);
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
    RNNKIT_MULTIVERSION static void backward(int, const Step<T>& st, Units u) {
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
