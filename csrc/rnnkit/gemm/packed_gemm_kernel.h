// The packed-GEMM kernel, compiled once per instruction set: a TU sets its `#pragma GCC target`,
// defines RNNKIT_ISA (a name), RNNKIT_MR and RNNKIT_NP (the register block), and includes this file,
// which defines rnnkit::packed_gemm_<RNNKIT_ISA> for float and double. Nothing from the standard library is
// used below, so no inline library code is emitted for a wider ISA than its caller has.
//
// MR rows of A x NP panels of 16 columns are held in registers while k runs.

namespace rnnkit {
namespace RNNKIT_ISA {

template <class T, int MR, int NP>
static inline void block(int mr, int ncols, int k, const T* a, int lda, const T* w, int wstride, bool acc_c,
                         T* c, int ldc) {
    typedef T V __attribute__((vector_size(16 * sizeof(T)), aligned(sizeof(T))));
    V acc[MR][NP];
    for (int r = 0; r < MR; ++r)
        for (int q = 0; q < NP; ++q) acc[r][q] = V{} * T(0);
    for (int kk = 0; kk < k; ++kk) {
        V b[NP];
        for (int q = 0; q < NP; ++q) b[q] = *reinterpret_cast<const V*>(w + q * wstride + kk * 16);
        for (int r = 0; r < MR; ++r) {
            const T ar = a[r * lda + kk];
            for (int q = 0; q < NP; ++q) acc[r][q] += ar * b[q];
        }
    }
    for (int r = 0; r < mr; ++r)
        for (int q = 0; q < NP; ++q) {
            T* cr = c + r * ldc + q * 16;
            const int cols = ncols - q * 16;
            if (cols >= 16) {
                V* cv = reinterpret_cast<V*>(cr);
                *cv = acc_c ? *cv + acc[r][q] : acc[r][q];
            } else {
                for (int j = 0; j < cols; ++j) cr[j] = acc_c ? cr[j] + acc[r][q][j] : acc[r][q][j];
            }
        }
}

// A block of mr < MR rows gets its own exactly sized kernel, so small batches stream W only once.
template <class T, int R, int NP>
static void rows(int mr, int ncols, int k, const T* a, int lda, const T* w, int wstride, bool acc_c, T* c,
                 int ldc) {
    if constexpr (R > 1)
        if (mr < R) return rows<T, R - 1, NP>(mr, ncols, k, a, lda, w, wstride, acc_c, c, ldc);
    block<T, R, NP>(mr, ncols, k, a, lda, w, wstride, acc_c, c, ldc);
}

// k is taken in slices of KC so that the slice of a panel pair (KC x 32 values, 32 KiB of float) stays
// in L1 while every row block of A passes over it; C absorbs the partial sums between slices.
constexpr int KC = 256;

template <class T, int MR, int NP>
static void gemm(int m, int n, int k, const T* a, int lda, const T* packed, bool acc_c, T* c, int ldc) {
    const int panels = (n + 15) / 16;
    const int wstride = k * 16;
    for (int k0 = 0; k0 < k; k0 += KC) {
        const int kc = k - k0 < KC ? k - k0 : KC;
        const bool acc = acc_c || k0 > 0;
        for (int p = 0; p < panels; p += NP) {
            const int ncols = n - p * 16 < NP * 16 ? n - p * 16 : NP * 16;
            const T* w = packed + (long)p * wstride + k0 * 16;
            for (int i = 0; i < m; i += MR) {
                const int mr = m - i < MR ? m - i : MR;
                const T* ai = a + (long)i * lda + k0;
                T* ci = c + (long)i * ldc + p * 16;
                if (panels - p >= NP)
                    rows<T, MR, NP>(mr, ncols, kc, ai, lda, w, wstride, acc, ci, ldc);
                else  // a last, lone panel
                    rows<T, MR, 1>(mr, ncols, kc, ai, lda, w, wstride, acc, ci, ldc);
            }
        }
    }
}

}  // namespace RNNKIT_ISA

#define RNNKIT_PASTE2(a, b) a##b
#define RNNKIT_PASTE(a, b) RNNKIT_PASTE2(a, b)

// float takes RNNKIT_NP panels per block; double, twice as wide per panel, takes one.
void RNNKIT_PASTE(packed_gemm_, RNNKIT_ISA)(int m, int n, int k, const float* a, int lda, const float* w,
                                            bool acc, float* c, int ldc) {
    RNNKIT_ISA::gemm<float, RNNKIT_MR, RNNKIT_NP>(m, n, k, a, lda, w, acc, c, ldc);
}

void RNNKIT_PASTE(packed_gemm_, RNNKIT_ISA)(int m, int n, int k, const double* a, int lda, const double* w,
                                            bool acc, double* c, int ldc) {
    RNNKIT_ISA::gemm<double, RNNKIT_MR, 1>(m, n, k, a, lda, w, acc, c, ldc);
}

}  // namespace rnnkit
