// The recurrent GEMM of every step, on weights packed once per call.
//
// A step multiplies a small matrix (B rows of h, or of gate gradients) by the same slice of W_hh, T
// times over. BLAS repacks that slice on every call; here it is packed once, in panels of 16 output
// columns (k x 16 values each, contiguous), and a register-blocked kernel streams the panels.
#pragma once

#include <cstddef>

namespace rnnkit {

constexpr int kPanel = 16;

inline int panels_of(int n) { return (n + kPanel - 1) / kPanel; }

// Packs columns [0, n) of the logical k x n matrix W[kk][j] = w[j * stride_n + kk * stride_k] into
// panels_of(n) panels; the last panel is zero-padded. Panels are panel_k rows apart (default k): a
// matrix whose k rows come from several places is packed by one call per place, each at its row offset.
template <class T>
void pack_panels(int n, int k, const T* w, std::size_t stride_n, std::size_t stride_k, T* out, int panel_k = 0) {
    if (panel_k == 0) panel_k = k;
    for (int p = 0; p < panels_of(n); ++p)
        for (int kk = 0; kk < k; ++kk)
            for (int jj = 0; jj < kPanel; ++jj) {
                const int j = p * kPanel + jj;
                out[(std::size_t(p) * panel_k + kk) * kPanel + jj] = j < n ? w[j * stride_n + kk * stride_k] : T(0);
            }
}

// C[m x n] = A[m x k] * W (+ C when accumulate), W packed by pack_panels. Dispatches at run time to
// the widest vector unit the CPU has.
template <class T>
void packed_gemm(int m, int n, int k, const T* a, int lda, const T* packed, bool accumulate, T* c, int ldc);

}  // namespace rnnkit
