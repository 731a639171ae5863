// rnnkit attention: Luong "dot" and "general" and Bahdanau "additive" attention for seq2seq decoders,
// forward and backward, in float and double. No Python dependency, like rnnkit.h.
//
// For each decoder state s_t (a query) and the encoder states h_1..h_N (the keys, which are also the
// values) of the same batch element:
//   dot:      e_ti = s_t . h_i                          (Hq == Hk)
//   general:  e_ti = s_t^T W h_i
//   additive: e_ti = v^T tanh(W_q s_t + W_k h_i)
//   alpha_t = softmax_i(e_ti) over the unmasked i (masked positions get exactly 0 weight)
//   a_t     = sum_i alpha_ti h_i
//
// Shapes (row-major, contiguous): B = batch, T = queries (decoder steps), N = keys (source positions),
// Hq = query size, Hk = key size, A = additive attention size.
//   queries  [B, T, Hq]   s_t, batch-major
//   keys     [B, N, Hk]   h_i
//   weight   [Hq, Hk]     W, general only (else null)
//   w_query  [A, Hq]      W_q, additive only (else null)
//   w_key    [A, Hk]      W_k, additive only
//   v        [A]          additive only
//   mask     [B, N]       true = a real source position, or null for all; every row needs one true
//   context  [B, T, Hk]   a_t
//   weights  [B, T, N]    alpha_t
#pragma once

#include <cstddef>

namespace rnnkit {

enum class AttentionKind { Dot, General, Additive };

template <class Real>
struct AttentionArgs {
    AttentionKind kind;
    int B, T, N, Hq, Hk;
    int A;                // additive only, else ignored
    const Real* queries;
    const Real* keys;
    const Real* weight;   // general
    const Real* w_query;  // additive
    const Real* w_key;    // additive
    const Real* v;        // additive
    const bool* mask;     // may be null
};

// Elements of Real a training forward must be given and that backward reads (without changing it, so
// one workspace serves any number of backwards): the weights alpha [B*T*N], then for general the
// projected queries W^T s_t [B*T*Hk], for additive the projections W_q s_t [B*T*A] and W_k h_i [B*N*A]
// (backward recomputes the tanh from them rather than keeping B*T*N*A values).
template <class Real>
std::size_t attention_workspace_size(const AttentionArgs<Real>& a);

// Forward. workspace null = inference. Throws std::invalid_argument on sizes < 1, a missing parameter
// or a fully masked row.
template <class Real>
void attention_forward(const AttentionArgs<Real>& a, Real* context, Real* weights, Real* workspace);

// Backward of the training forward that filled `workspace` with the same arguments.
// dcontext [B, T, Hk]; dweights [B, T, N] or null for zeros. Writes (overwrites) dqueries [B, T, Hq],
// dkeys [B, N, Hk] and the gradients of the kind's parameters (the others may be null): dweight [Hq, Hk];
// dw_query [A, Hq], dw_key [A, Hk], dv [A].
template <class Real>
void attention_backward(const AttentionArgs<Real>& a, const Real* workspace, const Real* dcontext,
                        const Real* dweights, Real* dqueries, Real* dkeys, Real* dweight, Real* dw_query,
                        Real* dw_key, Real* dv);

}  // namespace rnnkit
