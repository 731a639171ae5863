// Attention forward and backward (attention.h), step by step as in python/rnnkit/reference/attention.py.
//
// Work is split over the B*T query rows (softmax rows), and where keys accumulate over queries, over
// the B*N key rows, so each thread writes only its own rows and nothing needs atomics. A thread's
// range of rows may span several batch elements; for_segments cuts it at their boundaries, and each
// segment is one GEMM against that element's keys.
//   dot / general: E_b = Q_b K_b^T (Q = S for dot, S W for general), one GEMM per segment.
//   additive:      W_q s_t and W_k h_i are GEMMs over all rows first; then e_ti = v . tanh(.) is one
//                  fused, vectorised pass over A per (t, i).
//   both:          masked softmax in place, then context = alpha K_b, one GEMM per segment.
#include "rnnkit/ops/attention.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "rnnkit/cells/activations.h"
#include "rnnkit/gemm/blas.h"
#include "rnnkit/rnnkit.h"

namespace rnnkit {

namespace {

struct Range {
    int lo, hi;
    int size() const { return hi - lo; }
};

// Thread tid's share of n rows, contiguous and as even as possible.
Range share(int tid, int nt, int n) {
    const int base = n / nt, extra = n % nt;
    const int lo = tid * base + std::min(tid, extra);
    return {lo, lo + base + (tid < extra ? 1 : 0)};
}

// Calls f(b, r0, r1) for every batch element b whose rows b*R + [r0, r1) meet the flat rows [lo, hi).
template <class F>
void for_segments(Range rows, int R, F&& f) {
    for (int r = rows.lo; r < rows.hi;) {
        const int b = r / R, r0 = r - b * R, r1 = std::min(R, rows.hi - b * R);
        f(b, r0, r1);
        r += r1 - r0;
    }
}

// Below this many multiply-adds a second thread costs more than it saves.
int choose_threads(std::size_t work, int rows) {
    if (work < 16384) return 1;
    return std::max(1, std::min(get_num_threads(), rows));
}

template <class T>
void check(const AttentionArgs<T>& a) {
    if (a.B < 1 || a.T < 1 || a.N < 1 || a.Hq < 1 || a.Hk < 1)
        throw std::invalid_argument("attention: B, T, N, Hq and Hk must be at least 1");
    if (!a.queries || !a.keys) throw std::invalid_argument("attention: queries and keys are required");
    switch (a.kind) {
        case AttentionKind::Dot:
            if (a.Hq != a.Hk) throw std::invalid_argument("attention: dot needs Hq == Hk");
            break;
        case AttentionKind::General:
            if (!a.weight) throw std::invalid_argument("attention: general needs weight");
            break;
        case AttentionKind::Additive:
            if (a.A < 1 || !a.w_query || !a.w_key || !a.v)
                throw std::invalid_argument("attention: additive needs A >= 1, w_query, w_key and v");
            break;
        default:
            throw std::invalid_argument("attention: unknown kind");
    }
    if (a.mask)
        for (int b = 0; b < a.B; ++b)
            if (std::none_of(a.mask + std::size_t(b) * a.N, a.mask + std::size_t(b + 1) * a.N,
                             [](bool m) { return m; }))
                throw std::invalid_argument("attention: a mask row has no true entry");
}

// Workspace layout: alpha, then the kind's projections.
template <class T>
struct Layout {
    std::size_t alpha, proj_q, proj_k, total;
    explicit Layout(const AttentionArgs<T>& a) {
        const std::size_t BT = std::size_t(a.B) * a.T, BN = std::size_t(a.B) * a.N;
        alpha = 0;
        proj_q = BT * a.N;
        proj_k = proj_q;
        switch (a.kind) {
            case AttentionKind::Dot: break;
            case AttentionKind::General: proj_k += BT * a.Hk; break;
            case AttentionKind::Additive: proj_k += BT * a.A; break;
        }
        total = proj_k + (a.kind == AttentionKind::Additive ? BN * a.A : 0);
    }
};

// e_ti = v . tanh(q + k_i) for the unmasked i of one query row; masked scores are set to 0 unevaluated
// (the softmax ignores them).
template <class T>
RNNKIT_MULTIVERSION void additive_scores(const T* q, const T* kp, const T* v, const bool* mask, int N, int A,
                                         T* e) {
    for (int i = 0; i < N; ++i) {
        if (mask && !mask[i]) {
            e[i] = T(0);
            continue;
        }
        const T* k = kp + std::size_t(i) * A;
        T s = 0;
#pragma omp simd reduction(+ : s)
        for (int j = 0; j < A; ++j) s += v[j] * tanh_approx(q[j] + k[j]);
        e[i] = s;
    }
}

// Softmax of one row over its unmasked entries, in place; masked entries become exactly 0.
template <class T>
RNNKIT_MULTIVERSION void masked_softmax(T* e, const bool* mask, int N) {
    T top = -INFINITY;
    for (int i = 0; i < N; ++i)
        if (!mask || mask[i]) top = std::max(top, e[i]);
    T total = 0;
#pragma omp simd reduction(+ : total)
    for (int i = 0; i < N; ++i) {
        const T p = (!mask || mask[i]) ? exp_approx(e[i] - top) : T(0);
        e[i] = p;
        total += p;
    }
    const T inv = T(1) / total;
#pragma omp simd
    for (int i = 0; i < N; ++i) e[i] *= inv;
}

// dE = alpha * (dalpha - sum_i alpha_i dalpha_i), in place over dalpha; zero where alpha is zero.
template <class T>
RNNKIT_MULTIVERSION void softmax_backward(const T* alpha, T* d, int N) {
    T dot = 0;
#pragma omp simd reduction(+ : dot)
    for (int i = 0; i < N; ++i) dot += alpha[i] * d[i];
#pragma omp simd
    for (int i = 0; i < N; ++i) d[i] = alpha[i] * (d[i] - dot);
}

// One query row of the additive backward: with th = tanh(q + k_i) and g = dE_i v (1 - th^2),
// dq += g over the unmasked i and dv += dE_i th.
template <class T>
RNNKIT_MULTIVERSION void additive_query_grad(const T* q, const T* kp, const T* v, const T* de, const bool* mask,
                                             int N, int A, T* dq, T* dv) {
    std::memset(dq, 0, std::size_t(A) * sizeof(T));
    for (int i = 0; i < N; ++i) {
        if ((mask && !mask[i]) || de[i] == T(0)) continue;
        const T* k = kp + std::size_t(i) * A;
        const T d = de[i];
#pragma omp simd
        for (int j = 0; j < A; ++j) {
            const T th = tanh_approx(q[j] + k[j]);
            dq[j] += d * v[j] * (T(1) - th * th);
            dv[j] += d * th;
        }
    }
}

// One key row of the additive backward: dk = sum_t dE_ti v (1 - tanh(q_t + k)^2). de points at
// dE_0i and steps by N.
template <class T>
RNNKIT_MULTIVERSION void additive_key_grad(const T* k, const T* qp, const T* v, const T* de, int N, int Tq, int A,
                                           T* dk) {
    std::memset(dk, 0, std::size_t(A) * sizeof(T));
    for (int t = 0; t < Tq; ++t) {
        const T d = de[std::size_t(t) * N];
        if (d == T(0)) continue;
        const T* q = qp + std::size_t(t) * A;
#pragma omp simd
        for (int j = 0; j < A; ++j) {
            const T th = tanh_approx(q[j] + k[j]);
            dk[j] += d * v[j] * (T(1) - th * th);
        }
    }
}

}  // namespace

template <class T>
std::size_t attention_workspace_size(const AttentionArgs<T>& a) {
    return Layout<T>(a).total;
}

template <class T>
void attention_forward(const AttentionArgs<T>& a, T* context, T* weights, T* workspace) {
    check(a);
    const int B = a.B, Tq = a.T, N = a.N, Hq = a.Hq, Hk = a.Hk, A = a.A;
    const AttentionKind kind = a.kind;
    const Layout<T> lay(a);
    // Inference keeps the projections in scratch memory instead of the workspace.
    std::vector<T> scratch(workspace ? 0 : lay.total - lay.proj_q);
    T* proj_base = workspace ? workspace + lay.proj_q : scratch.data();
    T* proj_q = kind == AttentionKind::Dot ? nullptr : proj_base;                                // S W, or W_q s_t
    T* proj_k = kind == AttentionKind::Additive ? proj_base + (lay.proj_k - lay.proj_q) : nullptr;  // W_k h_i
    const T* q_eff = kind == AttentionKind::General ? proj_q : a.queries;  // what E = Q K^T multiplies
    const std::size_t work =
        std::size_t(B) * Tq * N * (kind == AttentionKind::Additive ? A : Hk) + std::size_t(B) * (Tq + N) * Hq * Hk;

    blas_single_threaded();
#pragma omp parallel num_threads(choose_threads(work, B * Tq))
    {
        const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
        const Range qrows = share(tid, nt, B * Tq);
        if (kind == AttentionKind::General) {
            gemm<T>(false, false, qrows.size(), Hk, Hq, T(1), a.queries + std::size_t(qrows.lo) * Hq, Hq, a.weight, Hk,
                    T(0), proj_q + std::size_t(qrows.lo) * Hk, Hk);
        } else if (kind == AttentionKind::Additive) {
            gemm<T>(false, true, qrows.size(), A, Hq, T(1), a.queries + std::size_t(qrows.lo) * Hq, Hq, a.w_query, Hq,
                    T(0), proj_q + std::size_t(qrows.lo) * A, A);
            const Range krows = share(tid, nt, B * N);
            gemm<T>(false, true, krows.size(), A, Hk, T(1), a.keys + std::size_t(krows.lo) * Hk, Hk, a.w_key, Hk, T(0),
                    proj_k + std::size_t(krows.lo) * A, A);
#pragma omp barrier
        }
        // General reads only its own rows of S W, so it needs no barrier.
        for_segments(qrows, Tq, [&](int b, int t0, int t1) {
            const int m = t1 - t0;
            const std::size_t row0 = std::size_t(b) * Tq + t0;
            const T* Kb = a.keys + std::size_t(b) * N * Hk;
            const bool* mb = a.mask ? a.mask + std::size_t(b) * N : nullptr;
            T* E = weights + row0 * N;
            if (kind == AttentionKind::Additive) {
                for (int t = 0; t < m; ++t)
                    additive_scores(proj_q + (row0 + t) * A, proj_k + std::size_t(b) * N * A, a.v, mb, N, A,
                                    E + std::size_t(t) * N);
            } else {
                gemm<T>(false, true, m, N, Hk, T(1), q_eff + row0 * Hk, Hk, Kb, Hk, T(0), E, N);
            }
            for (int t = 0; t < m; ++t) masked_softmax(E + std::size_t(t) * N, mb, N);
            gemm<T>(false, false, m, Hk, N, T(1), E, N, Kb, Hk, T(0), context + row0 * Hk, Hk);
            if (workspace) std::memcpy(workspace + lay.alpha + row0 * N, E, std::size_t(m) * N * sizeof(T));
        });
    }
}

// What the phases of one attention backward share: the arguments, the forward's saved values, and the
// intermediate gradients (dE w.r.t. the scores, w.r.t. the projected queries and, for additive, keys).
template <class T>
struct AttentionBackward {
    const AttentionArgs<T>& a;
    const T* alpha;    // [B*T, N] the attention weights
    const T* proj_q;   // general: S W; additive: W_q s_t
    const T* proj_k;   // additive: W_k h_i
    const T* q_eff;    // what the scores multiply the keys with: the projected queries (general) or the queries
    const T* dcontext;
    const T* dweights;
    T* dqueries;
    T* dkeys;
    std::vector<T>& dE;
    std::vector<T>& dproj_q;
    std::vector<T>& dproj_k;
    std::vector<T>& dv_part;  // [threads, A] each thread's share of dv (additive)
    bool additive() const { return a.kind == AttentionKind::Additive; }
};

// 1. Query rows: dalpha = dweights + dcontext K_b^T, dE through the softmax, then the query side.
template <class T>
void attention_query_rows(const AttentionBackward<T>& g, Range qrows, int tid) {
    const AttentionArgs<T>& a = g.a;
    const int Tq = a.T, N = a.N, Hq = a.Hq, Hk = a.Hk, A = a.A;
    for_segments(qrows, Tq, [&](int b, int t0, int t1) {
        const int m = t1 - t0;
        const std::size_t row0 = std::size_t(b) * Tq + t0;
        const T* Kb = a.keys + std::size_t(b) * N * Hk;
        T* d = g.dE.data() + row0 * N;
        if (g.dweights) std::memcpy(d, g.dweights + row0 * N, std::size_t(m) * N * sizeof(T));
        gemm<T>(false, true, m, N, Hk, T(1), g.dcontext + row0 * Hk, Hk, Kb, Hk, g.dweights ? T(1) : T(0), d, N);
        for (int t = 0; t < m; ++t) softmax_backward(g.alpha + (row0 + t) * N, d + std::size_t(t) * N, N);
        if (a.kind == AttentionKind::Dot) {
            gemm<T>(false, false, m, Hk, N, T(1), d, N, Kb, Hk, T(0), g.dqueries + row0 * Hq, Hq);
        } else if (a.kind == AttentionKind::General) {
            gemm<T>(false, false, m, Hk, N, T(1), d, N, Kb, Hk, T(0), g.dproj_q.data() + row0 * Hk, Hk);
        } else {
            const bool* mb = a.mask ? a.mask + std::size_t(b) * N : nullptr;
            for (int t = 0; t < m; ++t)
                additive_query_grad(g.proj_q + (row0 + t) * A, g.proj_k + std::size_t(b) * N * A, a.v,
                                    d + std::size_t(t) * N, mb, N, A, g.dproj_q.data() + (row0 + t) * A,
                                    g.dv_part.data() + std::size_t(tid) * A);
        }
    });
}

// 2. Key rows: dK_b = alpha_b^T dcontext_b + (dot/general) dE_b^T Q_b or (additive) dproj_k W_k.
template <class T>
void attention_key_rows(const AttentionBackward<T>& g, Range krows) {
    const AttentionArgs<T>& a = g.a;
    const int Tq = a.T, N = a.N, Hk = a.Hk, A = a.A;
    for_segments(krows, N, [&](int b, int i0, int i1) {
        const int m = i1 - i0;
        const std::size_t row0 = std::size_t(b) * N + i0, q0 = std::size_t(b) * Tq;
        T* dK = g.dkeys + row0 * Hk;
        gemm<T>(true, false, m, Hk, Tq, T(1), g.alpha + q0 * N + i0, N, g.dcontext + q0 * Hk, Hk, T(0), dK, Hk);
        if (!g.additive()) {
            gemm<T>(true, false, m, Hk, Tq, T(1), g.dE.data() + q0 * N + i0, N, g.q_eff + q0 * Hk, Hk, T(1), dK, Hk);
            return;
        }
        const bool* mb = a.mask ? a.mask + std::size_t(b) * N : nullptr;
        for (int i = i0; i < i1; ++i) {
            T* dk = g.dproj_k.data() + (std::size_t(b) * N + i) * A;
            if (mb && !mb[i]) {
                std::memset(dk, 0, std::size_t(A) * sizeof(T));
                continue;
            }
            additive_key_grad(g.proj_k + (std::size_t(b) * N + i) * A, g.proj_q + q0 * A, a.v, g.dE.data() + q0 * N + i,
                              N, Tq, A, dk);
        }
        gemm<T>(false, false, m, Hk, A, T(1), g.dproj_k.data() + row0 * A, A, a.w_key, Hk, T(1), dK, Hk);
    });
}

// 3. The queries through their projection, and the weight gradients (all of dE and dproj_q are ready since
//    the barrier after phase 1); additive's dW_k = dproj_k^T K waits for every key row's dproj_k.
template <class T>
void attention_weight_grads(const AttentionBackward<T>& g, Range qrows, int tid, int nt, T* dweight, T* dw_query,
                            T* dw_key, T* dv) {
    const AttentionArgs<T>& a = g.a;
    const int Hq = a.Hq, Hk = a.Hk, A = a.A;
    const std::size_t BT = std::size_t(a.B) * a.T, BN = std::size_t(a.B) * a.N;
    if (a.kind == AttentionKind::General) {
        gemm<T>(false, true, qrows.size(), Hq, Hk, T(1), g.dproj_q.data() + std::size_t(qrows.lo) * Hk, Hk, a.weight,
                Hk, T(0), g.dqueries + std::size_t(qrows.lo) * Hq, Hq);
        const Range wr = share(tid, nt, Hq);  // dW = S^T dproj_q, rows of dW split
        gemm<T>(true, false, wr.size(), Hk, int(BT), T(1), a.queries + wr.lo, Hq, g.dproj_q.data(), Hk, T(0),
                dweight + std::size_t(wr.lo) * Hk, Hk);
    } else if (g.additive()) {
        gemm<T>(false, false, qrows.size(), Hq, A, T(1), g.dproj_q.data() + std::size_t(qrows.lo) * A, A, a.w_query,
                Hq, T(0), g.dqueries + std::size_t(qrows.lo) * Hq, Hq);
        const Range ar = share(tid, nt, A);  // dW_q = dproj_q^T S, rows of dW_q split
        gemm<T>(true, false, ar.size(), Hq, int(BT), T(1), g.dproj_q.data() + ar.lo, A, a.queries, Hq, T(0),
                dw_query + std::size_t(ar.lo) * Hq, Hq);
        for (int j = ar.lo; j < ar.hi; ++j) {
            T s = 0;
            for (int p = 0; p < nt; ++p) s += g.dv_part[std::size_t(p) * A + j];
            dv[j] = s;
        }
#pragma omp barrier
        gemm<T>(true, false, ar.size(), Hk, int(BN), T(1), g.dproj_k.data() + ar.lo, A, a.keys, Hk, T(0),
                dw_key + std::size_t(ar.lo) * Hk, Hk);
    }
}

template <class T>
void attention_backward(const AttentionArgs<T>& a, const T* workspace, const T* dcontext, const T* dweights,
                        T* dqueries, T* dkeys, T* dweight, T* dw_query, T* dw_key, T* dv) {
    check(a);
    if (!workspace) throw std::invalid_argument("attention_backward needs the workspace of a training forward");
    const int B = a.B, Tq = a.T, N = a.N, Hq = a.Hq, Hk = a.Hk, A = a.A;
    const AttentionKind kind = a.kind;
    const Layout<T> lay(a);
    const bool additive = kind == AttentionKind::Additive;
    if (kind == AttentionKind::General && !dweight) throw std::invalid_argument("attention_backward: dweight is null");
    if (additive && (!dw_query || !dw_key || !dv))
        throw std::invalid_argument("attention_backward: dw_query, dw_key and dv are required for additive");

    const std::size_t BT = std::size_t(B) * Tq, BN = std::size_t(B) * N;
    std::vector<T> dE(BT * N);
    std::vector<T> dproj_q(kind == AttentionKind::General ? BT * Hk : additive ? BT * A : 0);
    std::vector<T> dproj_k(additive ? BN * A : 0);
    const std::size_t work = std::size_t(B) * Tq * N * (additive ? 2 * A : Hk) + std::size_t(B) * (Tq + N) * Hq * Hk;
    const int nt_max = choose_threads(work, B * Tq);
    std::vector<T> dv_part(additive ? std::size_t(nt_max) * A : 0, T(0));
    const T* proj_q = workspace + lay.proj_q;
    const AttentionBackward<T> g{a, workspace + lay.alpha, proj_q, workspace + lay.proj_k,
                                 kind == AttentionKind::General ? proj_q : a.queries, dcontext, dweights, dqueries,
                                 dkeys, dE, dproj_q, dproj_k, dv_part};

    blas_single_threaded();
#pragma omp parallel num_threads(nt_max)
    {
        const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
        const Range qrows = share(tid, nt, B * Tq);
        attention_query_rows(g, qrows, tid);
#pragma omp barrier
        attention_key_rows(g, share(tid, nt, B * N));
        attention_weight_grads(g, qrows, tid, nt, dweight, dw_query, dw_key, dv);
    }
}

template std::size_t attention_workspace_size<float>(const AttentionArgs<float>&);
template std::size_t attention_workspace_size<double>(const AttentionArgs<double>&);
template void attention_forward<float>(const AttentionArgs<float>&, float*, float*, float*);
template void attention_forward<double>(const AttentionArgs<double>&, double*, double*, double*);
template void attention_backward<float>(const AttentionArgs<float>&, const float*, const float*, const float*,
                                        float*, float*, float*, float*, float*, float*);
template void attention_backward<double>(const AttentionArgs<double>&, const double*, const double*, const double*,
                                         double*, double*, double*, double*, double*, double*);

}  // namespace rnnkit
