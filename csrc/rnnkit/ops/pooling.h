// rnnkit pooling: a sequence of vectors to one vector per batch element, over each element's valid steps
// only (many-to-one models: a recurrent stack's outputs -> a classifier's features). Forward and
// backward, float and double. No Python dependency, like rnnkit.h.
//
//   last: out_b = x[len_b - 1, b] for the columns of a forward direction, x[0, b] for those of a reverse
//         direction (each direction's final state; the columns [split, F) are the reverse direction's)
//   mean: out_b = (1 / len_b) sum_{t < len_b} x[t, b]
//   max:  out_b = max_{t < len_b} x[t, b], per column (the first step holding the maximum)
//
// Shapes (row-major, contiguous): T = steps, B = batch, F = features.
//   x       [T, B, F]  time-major, as the layers' outputs
//   lengths [B]        valid steps, 1..T, or null for all T
//   split              0 <= split <= F; columns >= split belong to a reverse direction (last only; F for
//                      a stack of one direction)
//   out     [B, F]
//   index   [B, F]     the step each output element was read from (last and max; backward's input),
//                      null for mean
//   dout    [B, F] -> dx [T, B, F], exactly zero at every step the forward did not read (padding
//                      included)
#pragma once

#include <cstdint>

namespace rnnkit {

enum class PoolKind { Last, Mean, Max };

template <class T>
void pool_forward(PoolKind kind, int steps, int B, int F, int split, const T* x, const std::int64_t* lengths,
                  T* out, std::int32_t* index);

template <class T>
void pool_backward(PoolKind kind, int steps, int B, int F, const std::int64_t* lengths, const std::int32_t* index,
                   const T* dout, T* dx);

}  // namespace rnnkit
