#include "rnnkit/gemm/blas.h"

#include <cblas.h>

namespace rnnkit {

static CBLAS_TRANSPOSE op(bool trans) { return trans ? CblasTrans : CblasNoTrans; }

// One row of A is a matrix-vector product, and OpenBLAS's gemv streams W many times faster than its
// gemm does for m == 1 (bench/gemm_choice.txt: 8 GFLOP/s at H = 512).
template <class T, class Gemm, class Gemv>
static void gemm_or_gemv(Gemm gemm_fn, Gemv gemv_fn, bool ta, bool tb, int m, int n, int k, T alpha, const T* a,
                         int lda, const T* b, int ldb, T beta, T* c, int ldc) {
    if (m <= 0 || n <= 0) return;
    if (m == 1) {
        // c = alpha * op(B)^T a + beta * c; op(B) is k x n. B stored k x n (no trans) or n x k (trans).
        const int rows = tb ? n : k, cols = tb ? k : n;
        gemv_fn(CblasRowMajor, tb ? CblasNoTrans : CblasTrans, rows, cols, alpha, b, ldb, a, ta ? lda : 1, beta, c, 1);
        return;
    }
    gemm_fn(CblasRowMajor, op(ta), op(tb), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <>
void gemm<float>(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda, const float* b,
                 int ldb, float beta, float* c, int ldc) {
    gemm_or_gemv<float>(scipy_cblas_sgemm, scipy_cblas_sgemv, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <>
void gemm<double>(bool ta, bool tb, int m, int n, int k, double alpha, const double* a, int lda, const double* b,
                  int ldb, double beta, double* c, int ldc) {
    gemm_or_gemv<double>(scipy_cblas_dgemm, scipy_cblas_dgemv, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// Checked on every call, not once: threadpoolctl and others may raise the library's count at any time,
// and a threaded BLAS under each OpenMP thread oversubscribes the cores several times over.
void blas_single_threaded() {
    if (scipy_openblas_get_num_threads() != 1) scipy_openblas_set_num_threads(1);
}

}  // namespace rnnkit
