// GRU cells (gate rows r, z, n as PyTorch stores them), in both forms:
//   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),  z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
//   GruCell    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))   PyTorch/cuDNN, linear before reset
//   GruChoCell n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)   Cho et al. 2014, reset before
//   h_t = (1 - z) * n + z * h_{t-1}
#pragma once

#include "rnnkit/loop/cell_step.h"

namespace rnnkit {

// Record per step: [r z n ghn], ghn = W_hn h + b_hn, which the reset gate multiplies (R = 4). Backward
// leaves r * dn in the ghn column: the gradient of W_hn h.
struct GruCell {
    static constexpr const char* name = "gru";
    static constexpr int gates_ih = 3, gates_hh = 3, R = 4, states = 1, phases = 1, input_grad_col = -1;
    static constexpr bool split_records = false;
    static constexpr std::array<int, 3> bias_ih_cols{0, 1, 2}, bias_hh_cols{0, 1, 3};
    static constexpr std::array<Product, 2> products{{{0, 2, 0, kPrevState, 0, true}, {2, 3, 3, kPrevState, 0, false}}};

    template <class T>
    RNNKIT_MULTIVERSION static void forward(int, const Step<T>& st, Units u) {
        const int B = st.a->B, H = st.a->H;
        const T *br = st.bias_of(0), *bz = st.bias_of(1), *bn = st.bias_of(2), *b_hn = st.bias_of(3);
        for (int b = 0; b < B; ++b) {
            if (!st.valid(b)) { st.carry(b, u); continue; }
            T *r = st.col(b, 0), *z = st.col(b, 1), *n = st.col(b, 2), *ghn = st.col(b, 3);
            const T* h_prev = st.hprev + b * H;
            T* h = st.hout + b * H;
#pragma omp simd
            for (int j = u.lo; j < u.hi; ++j) {
                const T gh = ghn[j] + b_hn[j];
                const T rg = sigmoid(r[j] + br[j]), zg = sigmoid(z[j] + bz[j]);
                const T ng = tanh_approx(n[j] + bn[j] + rg * gh);
                h[j] = (T(1) - zg) * ng + zg * h_prev[j];
                r[j] = rg, z[j] = zg, n[j] = ng, ghn[j] = gh;
            }
        }
    }

    template <class T>
    RNNKIT_MULTIVERSION static void backward(int, const Step<T>& st, Units u) {
        const int B = st.a->B, H = st.a->H;
        for (int b = 0; b < B; ++b) {
            if (!st.valid(b)) { st.no_gradient(b, u, R); continue; }
            T *r = st.col(b, 0), *z = st.col(b, 1), *n = st.col(b, 2), *ghn = st.col(b, 3);
            const T* h_prev = st.hprev + b * H;
            T* dh = st.dh + b * H;
#pragma omp simd
            for (int j = u.lo; j < u.hi; ++j) {
                const T dan = dh[j] * (T(1) - z[j]) * (T(1) - n[j] * n[j]);
                const T daz = dh[j] * (h_prev[j] - n[j]) * z[j] * (T(1) - z[j]);
                const T dar = dan * ghn[j] * r[j] * (T(1) - r[j]);
                dh[j] = dh[j] * z[j];
                ghn[j] = dan * r[j];
                r[j] = dar, z[j] = daz, n[j] = dan;
            }
        }
    }
};

// Record per step: [r z n rh], rh = r * h_{t-1}, the input of W_hn (R = 4). Two phases: W_hn (r * h)
// reads r * h of every unit, so the candidate waits for every thread's reset gate.
struct GruChoCell {
    static constexpr const char* name = "gru_cho";
    static constexpr int gates_ih = 3, gates_hh = 3, R = 4, states = 1, phases = 2, input_grad_col = -1;
    static constexpr int kRh = 3;
    static constexpr bool split_records = false;
    static constexpr std::array<int, 3> bias_ih_cols{0, 1, 2}, bias_hh_cols{0, 1, 2};
    static constexpr std::array<Product, 2> products{{{0, 2, 0, kPrevState, 0, true}, {2, 3, 2, kRh, 1, true}}};

    template <class T>
    static void forward(int phase, const Step<T>& st, Units u) {
        if (phase == 0)
            gates(st, u);
        else
            candidate(st, u);
    }

    template <class T>
    static void backward(int phase, const Step<T>& st, Units u) {
        if (phase == 1)
            candidate_gradients(st, u);
        else
            reset_gradient(st, u);
    }

    template <class T>
    RNNKIT_MULTIVERSION static void gates(const Step<T>& st, Units u) {
        const int B = st.a->B, H = st.a->H;
        const T *br = st.bias_of(0), *bz = st.bias_of(1);
        for (int b = 0; b < B; ++b) {
            T *r = st.col(b, 0), *z = st.col(b, 1), *rh = st.col(b, kRh);
            const T* h_prev = st.hprev + b * H;
            const bool valid = st.valid(b);
#pragma omp simd
            for (int j = u.lo; j < u.hi; ++j) {
                r[j] = sigmoid(r[j] + br[j]), z[j] = sigmoid(z[j] + bz[j]);
                rh[j] = valid ? r[j] * h_prev[j] : T(0);  // padding rows feed W_hn zeros, not garbage
            }
        }
    }

    template <class T>
    RNNKIT_MULTIVERSION static void candidate(const Step<T>& st, Units u) {
        const int B = st.a->B, H = st.a->H;
        const T* bn = st.bias_of(2);
        for (int b = 0; b < B; ++b) {
            if (!st.valid(b)) { st.carry(b, u); continue; }
            T *z = st.col(b, 1), *n = st.col(b, 2);
            const T* h_prev = st.hprev + b * H;
            T* h = st.hout + b * H;
#pragma omp simd
            for (int j = u.lo; j < u.hi; ++j) {
                n[j] = tanh_approx(n[j] + bn[j]);
                h[j] = (T(1) - z[j]) * n[j] + z[j] * h_prev[j];
            }
        }
    }

    template <class T>
    RNNKIT_MULTIVERSION static void candidate_gradients(const Step<T>& st, Units u) {
        const int B = st.a->B, H = st.a->H;
        for (int b = 0; b < B; ++b) {
            if (!st.valid(b)) { st.no_gradient(b, u, R); continue; }
            T *z = st.col(b, 1), *n = st.col(b, 2);
            const T* h_prev = st.hprev + b * H;
            T* dh = st.dh + b * H;
#pragma omp simd
            for (int j = u.lo; j < u.hi; ++j) {
                const T dan = dh[j] * (T(1) - z[j]) * (T(1) - n[j] * n[j]);
                const T daz = dh[j] * (h_prev[j] - n[j]) * z[j] * (T(1) - z[j]);
                dh[j] = dh[j] * z[j];
                z[j] = daz, n[j] = dan;
            }
        }
    }

    // d(r*h) = dn_pre W_hn is the source gradient of the rh column.
    template <class T>
    RNNKIT_MULTIVERSION static void reset_gradient(const Step<T>& st, Units u) {
        const int B = st.a->B, H = st.a->H;
        for (int b = 0; b < B; ++b) {
            if (!st.valid(b)) continue;
            T* r = st.col(b, 0);
            const T* h_prev = st.hprev + b * H;
            const T* drh = st.source_grad(b, kRh);
            T* dh = st.dh + b * H;
#pragma omp simd
            for (int j = u.lo; j < u.hi; ++j) {
                dh[j] += drh[j] * r[j];
                r[j] = drh[j] * h_prev[j] * r[j] * (T(1) - r[j]);
            }
        }
    }
};

}  // namespace rnnkit
