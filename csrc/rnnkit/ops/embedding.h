// The gradient of an embedding lookup: a scatter-add of output-gradient rows into the table's rows.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rnnkit {

// grad[idx[r], :] += dout[r, :] for r = 0..n-1 (E values per row). Rows are added in index order,
// the order NumPy's np.add.at uses, so repeated symbols sum the same way.
template <class T>
void embedding_backward(std::size_t n, std::size_t E, const std::int64_t* idx, const T* dout, T* grad) {
    for (std::size_t r = 0; r < n; ++r) {
        T* row = grad + std::size_t(idx[r]) * E;
        const T* d = dout + r * E;
#pragma omp simd
        for (std::size_t e = 0; e < E; ++e) row[e] += d[e];
    }
}

}  // namespace rnnkit
