// The three cells Jozefowicz, Zaremba and Sutskever (2015, "An Empirical Exploration of Recurrent Network
// Architectures") found by searching over ten thousand architectures:
//   MUT1: z = sigm(W_xz x + b_z)
//         r = sigm(W_xr x + W_hr h + b_r)
//         h' = tanh(W_hh (r * h) + tanh(x) + b_h) * z + h * (1 - z)
//   MUT2: z = sigm(W_xz x + W_hz h + b_z)
//         r = sigm(x + W_hr h + b_r)
//         h' = tanh(W_hh (r * h) + W_xh x + b_h) * z + h * (1 - z)
//   MUT3: z = sigm(W_xz x + W_hz tanh(h) + b_z)
//         r = sigm(W_xr x + W_hr h + b_r)
//         h' = tanh(W_hh (r * h) + W_xh x + b_h) * z + h * (1 - z)
// w_ih stacks the input weights each has in the order z, r, h (MUT1 [W_xz; W_xr], MUT2 [W_xz; W_xh],
// MUT3 [W_xz; W_xr; W_xh]); w_hh likewise (MUT1 [W_hr; W_hh], MUT2 and MUT3 [W_hz; W_hr; W_hh]); one
// bias [b_z; b_r; b_h] is b_ih. MUT1 and MUT2 read x directly, so their input size equals H.
//
// All three end like GRU-Cho: W_hh (r * h) reads r * h of every unit, so the candidate is a phase of its
// own. The record keeps the gates, r * h, and the cell's extra value (MUT1 tanh(x), MUT3 tanh(h)).
#pragma once

#include "rnnkit/loop/cell_step.h"

namespace rnnkit {

// The shared last phase: n = tanh(pre + extra + b_h) (extra: MUT1's tanh(x), else none),
// h' = n * z + h * (1 - z); and its gradient, which also leaves dn in n's column and dz in z's.
template <int kZ, int kN, int kExtra>
struct MutCandidate {
    template <class T>
    RNNKIT_MULTIVERSION static void forward(const Step<T>& st, Units u, const T* bn) {
        const int B = st.a->B, H = st.a->H;
        for (int b = 0; b < B; ++b) {
            if (!st.valid(b)) { st.carry(b, u); continue; }
            const T *z = st.col(b, kZ), *extra = kExtra >= 0 ? st.col(b, kExtra) : nullptr;
            T* n = st.col(b, kN);
            const T* h_prev = st.hprev + b * H;
            T* h = st.hout + b * H;
#pragma omp simd
            for (int j = u.lo; j < u.hi; ++j) {
                n[j] = tanh_approx(n[j] + bn[j] + (kExtra >= 0 ? extra[j] : T(0)));
                h[j] = n[j] * z[j] + h_prev[j] * (T(1) - z[j]);
            }
        }
    }

    template <class T>
    RNNKIT_MULTIVERSION static void backward(const Step<T>& st, Units u, int R) {
        const int B = st.a->B, H = st.a->H;
        for (int b = 0; b < B; ++b) {
            if (!st.valid(b)) { st.no_gradient(b, u, R); continue; }
            T *z = st.col(b, kZ), *n = st.col(b, kN), *extra = kExtra >= 0 ? st.col(b, kExtra) : nullptr;
            const T* h_prev = st.hprev + b * H;
            T* dh = st.dh + b * H;
#pragma omp simd
            for (int j = u.lo; j < u.hi; ++j) {
                const T dn = dh[j] * z[j] * (T(1) - n[j] * n[j]);
                const T dz = dh[j] * (n[j] - h_prev[j]) * z[j] * (T(1) - z[j]);
                dh[j] = dh[j] * (T(1) - z[j]);
                if (kExtra >= 0) extra[j] = dn * (T(1) - extra[j] * extra[j]);  // d tanh(x)
                n[j] = dn, z[j] = dz;
            }
        }
    }
};

// r's gradient from d(r * h), the source gradient of the rh column: dh += d(rh) * r, dr_pre in r's column.
template <int kR, int kRh>
struct MutReset {
    template <class T>
    RNNKIT_MULTIVERSION static void backward(const Step<T>& st, Units u) {
        const int B = st.a->B, H = st.a->H;
        for (int b = 0; b < B; ++b) {
            if (!st.valid(b)) continue;
            T* r = st.col(b, kR);
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

// Record [z r n rh tx], tx = tanh(x) (backward: its gradient, added to dx).
struct Mut1Cell {
    static constexpr const char* name = "mut1";
    static constexpr int kZ = 0, kR = 1, kN = 2, kRh = 3, kTx = 4;
    static constexpr int gates_ih = 2, gates_hh = 2, R = 5, states = 1, phases = 2, input_grad_col = kTx;
    static constexpr bool split_records = false;
    static constexpr std::array<int, 3> bias_ih_cols{kZ, kR, kN};
    static constexpr std::array<int, 0> bias_hh_cols{};
    static constexpr std::array<Product, 2> products{{{0, 1, kR, kPrevState, 0, true}, {1, 2, kN, kRh, 1, false}}};
    using Candidate = MutCandidate<kZ, kN, kTx>;

    template <class T>
    static void forward(int phase, const Step<T>& st, Units u) {
        if (phase == 0)
            gates(st, u);
        else
            Candidate::forward(st, u, st.bias_of(kN));
    }

    template <class T>
    static void backward(int phase, const Step<T>& st, Units u) {
        if (phase == 1)
            Candidate::backward(st, u, R);
        else
            MutReset<kR, kRh>::backward(st, u);
    }

    template <class T>
    RNNKIT_MULTIVERSION static void gates(const Step<T>& st, Units u) {
        const int B = st.a->B, H = st.a->H;
        const T *bz = st.bias_of(kZ), *br = st.bias_of(kR);
        for (int b = 0; b < B; ++b) {
            T *z = st.col(b, kZ), *r = st.col(b, kR), *rh = st.col(b, kRh), *tx = st.col(b, kTx);
            const T* h_prev = st.hprev + b * H;
            const T* x = st.input(b);
            const bool valid = st.valid(b);
#pragma omp simd
            for (int j = u.lo; j < u.hi; ++j) {
                z[j] = sigmoid(z[j] + bz[j]), r[j] = sigmoid(r[j] + br[j]);
                rh[j] = valid ? r[j] * h_prev[j] : T(0);  // padding rows feed W_hh zeros, not garbage
                tx[j] = valid ? tanh_approx(x[j]) : T(0);
            }
        }
    }
};

// Record [z n r rh]: W_ih's blocks z, h fill columns 0, 1; r's column takes W_hr h + x (backward: dr_pre,
// which is also x's direct gradient).
struct Mut2Cell {
    static constexpr const char* name = "mut2";
    static constexpr int kZ = 0, kN = 1, kR = 2, kRh = 3;
    static constexpr int gates_ih = 2, gates_hh = 3, R = 4, states = 1, phases = 2, input_grad_col = kR;
    static constexpr bool split_records = false;
    static constexpr std::array<int, 3> bias_ih_cols{kZ, kR, kN};
    static constexpr std::array<int, 0> bias_hh_cols{};
    static constexpr std::array<Product, 3> products{
        {{0, 1, kZ, kPrevState, 0, true}, {1, 2, kR, kPrevState, 0, false}, {2, 3, kN, kRh, 1, true}}};
    using Candidate = MutCandidate<kZ, kN, -1>;

    template <class T>
    static void forward(int phase, const Step<T>& st, Units u) {
        if (phase == 0)
            gates(st, u);
        else
            Candidate::forward(st, u, st.bias_of(kN));
    }

    template <class T>
    static void backward(int phase, const Step<T>& st, Units u) {
        if (phase == 1)
            Candidate::backward(st, u, R);
        else
            MutReset<kR, kRh>::backward(st, u);
    }

    template <class T>
    RNNKIT_MULTIVERSION static void gates(const Step<T>& st, Units u) {
        const int B = st.a->B, H = st.a->H;
        const T *bz = st.bias_of(kZ), *br = st.bias_of(kR);
        for (int b = 0; b < B; ++b) {
            T *z = st.col(b, kZ), *r = st.col(b, kR), *rh = st.col(b, kRh);
            const T* h_prev = st.hprev + b * H;
            const bool valid = st.valid(b);
            const T* x = st.input(b);
#pragma omp simd
            for (int j = u.lo; j < u.hi; ++j) {
                z[j] = sigmoid(z[j] + bz[j]);
                r[j] = valid ? sigmoid(r[j] + x[j] + br[j]) : T(0);
                rh[j] = r[j] * h_prev[j];
            }
        }
    }
};

// Record [z r n rh th], th = tanh(h_{t-1}), the source of W_hz: a phase of its own before the gates.
struct Mut3Cell {
    static constexpr const char* name = "mut3";
    static constexpr int kZ = 0, kR = 1, kN = 2, kRh = 3, kTh = 4;
    static constexpr int gates_ih = 3, gates_hh = 3, R = 5, states = 1, phases = 3, input_grad_col = -1;
    static constexpr bool split_records = false;
    static constexpr std::array<int, 3> bias_ih_cols{kZ, kR, kN};
    static constexpr std::array<int, 0> bias_hh_cols{};
    static constexpr std::array<Product, 3> products{
        {{1, 2, kR, kPrevState, 0, true}, {0, 1, kZ, kTh, 1, true}, {2, 3, kN, kRh, 2, true}}};
    using Candidate = MutCandidate<kZ, kN, -1>;

    template <class T>
    static void forward(int phase, const Step<T>& st, Units u) {
        if (phase == 0)
            tanh_state(st, u);
        else if (phase == 1)
            gates(st, u);
        else
            Candidate::forward(st, u, st.bias_of(kN));
    }

    template <class T>
    static void backward(int phase, const Step<T>& st, Units u) {
        if (phase == 2)
            Candidate::backward(st, u, R);
        else if (phase == 1)
            MutReset<kR, kRh>::backward(st, u);
        else
            tanh_state_gradient(st, u);
    }

    template <class T>
    RNNKIT_MULTIVERSION static void tanh_state(const Step<T>& st, Units u) {
        const int B = st.a->B, H = st.a->H;
        for (int b = 0; b < B; ++b) {
            T* th = st.col(b, kTh);
            const T* h_prev = st.hprev + b * H;
#pragma omp simd
            for (int j = u.lo; j < u.hi; ++j) th[j] = tanh_approx(h_prev[j]);
        }
    }

    template <class T>
    RNNKIT_MULTIVERSION static void gates(const Step<T>& st, Units u) {
        const int B = st.a->B, H = st.a->H;
        const T *bz = st.bias_of(kZ), *br = st.bias_of(kR);
        for (int b = 0; b < B; ++b) {
            T *z = st.col(b, kZ), *r = st.col(b, kR), *rh = st.col(b, kRh);
            const T* h_prev = st.hprev + b * H;
            const bool valid = st.valid(b);
#pragma omp simd
            for (int j = u.lo; j < u.hi; ++j) {
                z[j] = sigmoid(z[j] + bz[j]), r[j] = sigmoid(r[j] + br[j]);
                rh[j] = valid ? r[j] * h_prev[j] : T(0);
            }
        }
    }

    // dh += d(tanh h) * (1 - tanh^2 h), d(tanh h) = dz_pre W_hz being the th column's source gradient.
    template <class T>
    RNNKIT_MULTIVERSION static void tanh_state_gradient(const Step<T>& st, Units u) {
        const int B = st.a->B, H = st.a->H;
        for (int b = 0; b < B; ++b) {
            if (!st.valid(b)) continue;
            const T* th = st.col(b, kTh);
            const T* dth = st.source_grad(b, kTh);
            T* dh = st.dh + b * H;
#pragma omp simd
            for (int j = u.lo; j < u.hi; ++j) dh[j] += dth[j] * (T(1) - th[j] * th[j]);
        }
    }
};

}  // namespace rnnkit
