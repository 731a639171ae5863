#include "blas.h"

#include <cblas.h>

namespace rnnkit {

static CBLAS_TRANSPOSE op(bool trans) { return trans ? CblasTrans : CblasNoTrans; }

template <>
void gemm<float>(bool ta, bool tb, int m, int n, int k, float alpha, const float* a, int lda,
                 const float* b, int ldb, float beta, float* c, int ldc) {
    if (m <= 0 || n <= 0) return;
    scipy_cblas_sgemm(CblasRowMajor, op(ta), op(tb), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

template <>
void gemm<double>(bool ta, bool tb, int m, int n, int k, double alpha, const double* a, int lda,
                  const double* b, int ldb, double beta, double* c, int ldc) {
    if (m <= 0 || n <= 0) return;
    scipy_cblas_dgemm(CblasRowMajor, op(ta), op(tb), m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

// Checked on every call, not once: threadpoolctl and others may raise the library's count at any time,
// and a threaded BLAS under each OpenMP thread oversubscribes the cores several times over.
void blas_single_threaded() {
    if (scipy_openblas_get_num_threads() != 1) scipy_openblas_set_num_threads(1);
}

}  // namespace rnnkit
