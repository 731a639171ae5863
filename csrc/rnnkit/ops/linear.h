// A fully connected layer, y = x W^T + b, forward and backward, on the kernels' own threads.
//
// The models' small layers (a seq2seq head, its initial-state projection) used NumPy's matmul, whose
// BLAS threads spin between calls and then compete with the recurrent kernels' OpenMP threads, which
// slows a training loop several times over unless it holds NumPy's BLAS to one thread.
#pragma once

#include <cstddef>

namespace rnnkit {

// The OpenMP threads for products of N x I by I x O: one below 2^18 multiply-adds, where a second thread
// costs more than it saves, else all of them.
int linear_threads(int N, int I, int O);

// x [N, I], w [O, I], b [O] or null -> y [N, O].
template <class T>
void linear_forward(int N, int I, int O, const T* x, const T* w, const T* b, T* y);

// dy [N, O]: dw [O, I] += dy^T x, db [O] += column sums of dy (when db is not null), and dx [N, I] = dy w
// when dx is not null. db is summed in row order at any thread count.
template <class T>
void linear_backward(int N, int I, int O, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db);

}  // namespace rnnkit
