// GRU cells, forward and backward (gate rows r, z, n as PyTorch stores them), in both forms:
//   r = sigmoid(W_ir x + b_ir + W_hr h + b_hr),  z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
//   GruCell    n = tanh(W_in x + b_in + r * (W_hn h + b_hn))   PyTorch/cuDNN, linear before reset
//   GruChoCell n = tanh(W_in x + b_in + W_hn (r * h) + b_hn)   Cho et al. 2014, reset before
//   h_t = (1 - z) * n + z * h_{t-1}
#pragma once

#include "sequence.h"

namespace rnnkit {

// Record per step: [r z n ghn], ghn = W_hn h + b_hn, which the reset gate multiplies (R = 4).
struct GruCell {
    static constexpr int G = 3, R = 4;
    static constexpr bool has_c = false;
    static constexpr bool split_records = false;
    static constexpr bool folds_hidden_bias(int g) { return g != 2; }
    // Hidden-side gradients: r, z as for the input side; n's is r * dn, kept in the ghn column.
    static constexpr HiddenSegment hidden_segments[] = {{0, 2, 0, -1}, {2, 3, 3, -1}};

    template <class T>
    static void forward(const Step<T>& st, Units u) {
        const int H = st.a->H;
        recurrent_gemm(st, u, 0, 2, st.hprev, H, true, st.rec);
        recurrent_gemm(st, u, 2, 3, st.hprev, H, false, st.rec + 3 * H);
        activate(st, u);
    }

    template <class T>
    RNNKIT_MULTIVERSION static void activate(const Step<T>& st, Units u) {
        const int B = st.a->B, H = st.a->H;
        const T* b_hn = st.a->b_hh ? st.a->b_hh + 2 * H : nullptr;
        const T *br = st.bias, *bz = br + H, *bn = br + 2 * H;
        for (int b = 0; b < B; ++b) {
            if (!st.valid(b)) { st.carry(b, u); continue; }
            T* r = st.rec + b * st.ldr;
            T *z = r + H, *n = r + 2 * H, *ghn = r + 3 * H;
            const T* h_prev = st.hprev + b * H;
            T* h = st.hout + b * H;
            // A pass of its own, not `b_hn ? b_hn[j] : 0` in the loop below: a vectorised select may
            // read b_hn[j] whatever the condition, and without bias b_hn is null.
            if (b_hn)
                for (int j = u.lo; j < u.hi; ++j) ghn[j] += b_hn[j];
#pragma omp simd
            for (int j = u.lo; j < u.hi; ++j) {
                const T gh = ghn[j];
                const T rg = sigmoid(r[j] + br[j]), zg = sigmoid(z[j] + bz[j]);
                const T ng = tanh_approx(n[j] + bn[j] + rg * gh);
                h[j] = (T(1) - zg) * ng + zg * h_prev[j];
                r[j] = rg, z[j] = zg, n[j] = ng;
            }
        }
    }

    template <class T>
    static void backward(const Step<T>& st, Units u) {
        gate_gradients(st, u);
#pragma omp barrier
        for (int s = 0; s < 2; ++s) backprop_to_state(st, u, hidden_segments, s);
    }

    template <class T>
    RNNKIT_MULTIVERSION static void gate_gradients(const Step<T>& st, Units u) {
        const int B = st.a->B, H = st.a->H;
        for (int b = 0; b < B; ++b) {
            if (!st.valid(b)) { st.no_gradient(b, u, R); continue; }
            T* r = st.rec + b * st.ldr;
            T *z = r + H, *n = r + 2 * H, *ghn = r + 3 * H;
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

// Record per step: [r z n rh], rh = r * h_{t-1}, the input of W_hn (R = 4). Needs a second barrier
// per step: W_hn (r * h) reads r * h of every unit.
struct GruChoCell {
    static constexpr int G = 3, R = 4;
    static constexpr bool has_c = false;
    static constexpr bool split_records = false;
    static constexpr bool folds_hidden_bias(int) { return true; }
    static constexpr HiddenSegment hidden_segments[] = {{0, 2, 0, -1}, {2, 3, 2, 3}};

    template <class T>
    static void forward(const Step<T>& st, Units u) {
        const int H = st.a->H;
        recurrent_gemm(st, u, 0, 2, st.hprev, H, true, st.rec);
        activate_gates(st, u);
#pragma omp barrier
        recurrent_gemm(st, u, 2, 3, st.rec + 3 * H, st.ldr, true, st.rec + 2 * H);
        activate_candidate(st, u);
    }

    template <class T>
    RNNKIT_MULTIVERSION static void activate_gates(const Step<T>& st, Units u) {
        const int B = st.a->B, H = st.a->H;
        const T *br = st.bias, *bz = br + H;
        for (int b = 0; b < B; ++b) {
            T* r = st.rec + b * st.ldr;
            T *z = r + H, *rh = r + 3 * H;
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
    RNNKIT_MULTIVERSION static void activate_candidate(const Step<T>& st, Units u) {
        const int B = st.a->B, H = st.a->H;
        const T* bn = st.bias + 2 * H;
        for (int b = 0; b < B; ++b) {
            if (!st.valid(b)) { st.carry(b, u); continue; }
            T* z = st.rec + b * st.ldr + H;
            T* n = z + H;
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
    static void backward(const Step<T>& st, Units u) {
        candidate_gradients(st, u);
#pragma omp barrier
        // d(r*h) = dn_pre W_hn, needed in full before the reset gate's gradient.
        segment_gemm(st, u, hidden_segments, 1, false, st.scratch);
        reset_gradient(st, u);
#pragma omp barrier
        backprop_to_state(st, u, hidden_segments, 0);
    }

    template <class T>
    RNNKIT_MULTIVERSION static void candidate_gradients(const Step<T>& st, Units u) {
        const int B = st.a->B, H = st.a->H;
        for (int b = 0; b < B; ++b) {
            if (!st.valid(b)) { st.no_gradient(b, u, R); continue; }
            T* z = st.rec + b * st.ldr + H;
            T* n = z + H;
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

    template <class T>
    RNNKIT_MULTIVERSION static void reset_gradient(const Step<T>& st, Units u) {
        const int B = st.a->B, H = st.a->H;
        for (int b = 0; b < B; ++b) {
            if (!st.valid(b)) continue;
            T* r = st.rec + b * st.ldr;
            const T* h_prev = st.hprev + b * H;
            const T* drh = st.scratch + b * H;
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
