// The recurrent GEMM of every step, on weights packed once per call.
//
// A step multiplies a small matrix (B rows of h, or of gate gradients) by the same slice of W_hh, T
// times over. BLAS repacks that slice on every call; here it is packed once, in panels of 16 output
// columns (k x 16 values each, contiguous), and a register-blocked kernel streams the panels.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace rnnkit {

constexpr int kPanel = 16;

inline int panels_of(int n) { return (n + kPanel - 1) / kPanel; }

// Packs the full 16 x 16 blocks (panels [0, panels), k [0, k16)) of a float W whose k values are
// contiguous (stride_k == 1: W_hh's rows, packed forward), transposing them in registers; false where
// the CPU has no kernel for it. A loop over single values would read 16 rows a value at a time: packing
// an H = 1024 LSTM's W_hh took 2-4 times as long.
bool pack_blocks_transposed(int panels, int k16, const float* w, std::size_t stride_n, float* out, int panel_k);

// Packs columns [0, n) of the logical k x n matrix W[kk][j] = w[j * stride_n + kk * stride_k] into
// panels_of(n) panels; the last panel is zero-padded. Panels are panel_k rows apart (default k): a
// matrix whose k rows come from several places is packed by one call per place, each at its row offset.
template <class T>
void pack_panels(int n, int k, const T* w, std::size_t stride_n, std::size_t stride_k, T* out, int panel_k = 0) {
    if (panel_k == 0) panel_k = k;
    auto values = [&](int p0, int p1, int k0, int k1) {
        for (int p = p0; p < p1; ++p)
            for (int kk = k0; kk < k1; ++kk)
                for (int jj = 0; jj < kPanel; ++jj) {
                    const int j = p * kPanel + jj;
                    out[(std::size_t(p) * panel_k + kk) * kPanel + jj] = j < n ? w[j * stride_n + kk * stride_k] : T(0);
                }
    };
    const int full = n / kPanel, k16 = k / kPanel * kPanel;
    if constexpr (std::is_same_v<T, float>)
        if (stride_k == 1 && pack_blocks_transposed(full, k16, w, stride_n, out, panel_k)) {
            values(0, full, k16, k);
            return values(full, panels_of(n), 0, k);
        }
    values(0, panels_of(n), 0, k);
}

// C[m x n] = A[m x k] * W (+ C when accumulate), W packed by pack_panels. Dispatches at run time to
// the widest vector unit the CPU has.
template <class T>
void packed_gemm(int m, int n, int k, const T* a, int lda, const T* packed, bool accumulate, T* c, int ldc);

// c[0..n) (+)= a[0..k) * W, W packed by pack_panels: the product of a batch of one, which streams W
// once a step, on panel_gemv's kernel. W may be float or IEEE half (to_half of the float panels): half
// weights are half the bytes to stream.
template <class W>
void packed_gemv(int n, int k, const float* a, const W* packed, bool accumulate, float* c);

// The kernel packed_gemm runs on this CPU: "avx512", "avx2" or "generic".
const char* packed_gemm_kernel();

}  // namespace rnnkit
