// A language model's output layer and its loss in one call:
//   logits = x W^T + b,  loss = sum_n w_n * (log sum_v exp(logits_nv) - logits_n,y_n) / sum_n w_n
// and, when asked, the gradients: dx = dlogits W, dW += dlogits^T x, db += column sums of dlogits, with
// dlogits = (softmax(logits) - onehot(y)) * w_n / sum(w).
//
// N = predictions, I = input width, V = classes. Rows are split across OpenMP threads for the logits and
// the loss; the gradients are linear_backward's (linear.h), which splits classes for dW and db, so no
// thread sums into another's output. The loss is summed in row order, the same at any thread count.
#pragma once

#include <cstdint>

namespace rnnkit {

template <class T>
struct OutputLossArgs {
    int N, I, V;
    const T* x;                   // [N, I]
    const T* w;                   // [V, I]
    const T* b;                   // [V] or null
    const std::int64_t* targets;  // [N], each in 0..V-1
    const T* weights;             // [N] non-negative, or null for all ones
};

// Returns the loss. `logits` is scratch of N*V values (it ends holding dlogits, or the logits without
// gradients). dx == null skips every gradient; otherwise dx [N, I] is written and dw [V, I], db [V] (may
// be null) are added to.
template <class T>
double output_loss(const OutputLossArgs<T>& a, T* logits, T* dx, T* dw, T* db);

}  // namespace rnnkit
