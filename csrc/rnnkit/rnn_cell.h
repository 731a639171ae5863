// Vanilla RNN cell, forward and backward: h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh).
// Record per step: [pre-activation] (G = 1, R = 1); backward reads the activation back from h_t.
#pragma once

#include "sequence.h"

namespace rnnkit {

template <bool Relu>
struct RnnCell {
    static constexpr int G = 1, R = 1;
    static constexpr bool has_c = false;
    static constexpr bool split_records = false;
    static constexpr bool folds_hidden_bias(int) { return true; }
    static constexpr HiddenSegment hidden_segments[] = {{0, 1, 0, -1}};

    template <class T>
    static void forward(const Step<T>& st, Units u) {
        recurrent_gemm(st, u, 0, 1, st.hprev, st.a->H, true, st.rec);
        activate(st, u);
    }

    template <class T>
    RNNKIT_MULTIVERSION static void activate(const Step<T>& st, Units u) {
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
