// The gradient of a first layer's input projection when its inputs are embedding rows (or one-hot
// vectors): what a character model's embedding and weight_ih_l0 receive.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rnnkit {

// dP [n, G] is the gradient of the projection P = E[ids] W_ih^T (n rows, G = gates*hidden columns).
// Its rows are summed per symbol into S [V, G] (the caller's scratch, overwritten); then
//   table given: d_table [V, E] += S W_ih and d_w_ih [G, E] += S^T table
//   table null (one-hot input, E = V): d_w_ih [G, V] += S^T
// products over V rows where the layer would run two GEMMs over all n. The sums are taken in row
// order, so a fixed input gives the same bits at any thread count.
template <class T>
void embedded_projection_backward(std::size_t n, int V, int G, int E, const std::int64_t* ids, const T* dP,
                                  const T* w_ih, const T* table, T* S, T* d_table, T* d_w_ih);

}  // namespace rnnkit
