// Vanilla RNN cell: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh), act = tanh or relu.
// Record per step: [pre-activation] (R = 1); backward reads the activation back from h_t.
#pragma once

#include "rnnkit/loop/cell_step.h"

namespace rnnkit {

template <bool Relu>
struct RnnCell {
    static constexpr const char* name = Relu ? "rnn_relu" : "rnn_tanh";
    static constexpr int gates_ih = 1, gates_hh = 1, R = 1, states = 1, phases = 1, input_grad_col = -1;
    static constexpr bool split_records = false;
    static constexpr std::array<int, 1> bias_ih_cols{0}, bias_hh_cols{0};
    static constexpr std::array<Product, 1> products{{{0, 1, 0, kPrevState, 0, true}}};

    template <class T>
    RNNKIT_MULTIVERSION static void forward(int, const Step<T>& st, Units u) {
        const int B = st.a->B, H = st.a->H;
        for (int b = 0; b < B; ++b) {
            if (!st.valid(b)) { st.carry(b, u); continue; }
            const T* pre = st.col(b, 0);
            const T* bias = st.bias;
            T* h = st.hout + b * H;
#pragma omp simd
            for (int j = u.lo; j < u.hi; ++j) h[j] = Relu ? relu(pre[j] + bias[j]) : tanh_approx(pre[j] + bias[j]);
        }
    }

    template <class T>
    RNNKIT_MULTIVERSION static void backward(int, const Step<T>& st, Units u) {
        const int B = st.a->B, H = st.a->H;
        for (int b = 0; b < B; ++b) {
            if (!st.valid(b)) { st.no_gradient(b, u, R); continue; }
            T* dpre = st.col(b, 0);
            const T* h = st.hout + b * H;
            T* dh = st.dh + b * H;
#pragma omp simd
            for (int j = u.lo; j < u.hi; ++j) {
                dpre[j] = Relu ? (h[j] > T(0) ? dh[j] : T(0)) : dh[j] * (T(1) - h[j] * h[j]);
                dh[j] = T(0);  // h_{t-1} reaches h_t only through W_hh
            }
        }
    }
};

}  // namespace rnnkit
