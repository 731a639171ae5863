// The one GEMM wrapper of the kernels: row-major C = alpha * op(A) * op(B) + beta * C.
//
// BLAS (OpenBLAS from the scipy-openblas32 wheel) always runs single-threaded here: the kernels split
// work across their own OpenMP threads and each thread calls BLAS on its slice, so there is one
// thread pool, never two competing for the same cores.
#pragma once

namespace rnnkit {

template <class T>
void gemm(bool trans_a, bool trans_b, int m, int n, int k, T alpha, const T* a, int lda, const T* b,
          int ldb, T beta, T* c, int ldc);

// Pins the BLAS library to one thread; every kernel calls it before its parallel region.
void blas_single_threaded();

}  // namespace rnnkit
