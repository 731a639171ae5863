#include "rnnkit/ops/linear.h"

#include <omp.h>

#include "rnnkit/gemm/blas.h"
#include "rnnkit/support/partition.h"
#include "rnnkit/rnnkit.h"

namespace rnnkit {

int linear_threads(int N, int I, int O) { return double(N) * I * O < double(1 << 18) ? 1 : get_num_threads(); }

template <class T>
void linear_forward(int N, int I, int O, const T* x, const T* w, const T* b, T* y) {
    blas_single_threaded();
#pragma omp parallel num_threads(linear_threads(N, I, O))
    {
        const Block out = output_share(omp_get_thread_num(), omp_get_num_threads(), N, O);
        if (!out.empty()) {
            for (int r = out.rows.lo; r < out.rows.hi; ++r)
                for (int o = out.cols.lo; o < out.cols.hi; ++o) y[std::size_t(r) * O + o] = b ? b[o] : T(0);
            gemm<T>(false, true, out.rows.hi - out.rows.lo, out.cols.hi - out.cols.lo, I, T(1),
                    x + std::size_t(out.rows.lo) * I, I, w + std::size_t(out.cols.lo) * I, I, T(1),
                    y + std::size_t(out.rows.lo) * O + out.cols.lo, O);
        }
    }
}

template <class T>
void linear_backward(int N, int I, int O, const T* x, const T* w, const T* dy, T* dx, T* dw, T* db) {
    blas_single_threaded();
#pragma omp parallel num_threads(linear_threads(N, I, O))
    {
        const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
        // Each thread owns a share of the weight's rows: its rows of dw and its entries of db.
        const Span<int> own = even_share(tid, nt, O);
        if (own.hi > own.lo) {
            gemm<T>(true, false, own.hi - own.lo, I, N, T(1), dy + own.lo, O, x, I, T(1),
                    dw + std::size_t(own.lo) * I, I);
            if (db)
                for (int r = 0; r < N; ++r) {
                    const T* d = dy + std::size_t(r) * O;
#pragma omp simd
                    for (int o = own.lo; o < own.hi; ++o) db[o] += d[o];
                }
        }
        const Block in = output_share(tid, nt, N, I);
        if (dx && !in.empty())
            gemm<T>(false, false, in.rows.hi - in.rows.lo, in.cols.hi - in.cols.lo, O, T(1),
                    dy + std::size_t(in.rows.lo) * O, O, w + in.cols.lo, I, T(0),
                    dx + std::size_t(in.rows.lo) * I + in.cols.lo, I);
    }
}

template void linear_forward<float>(int, int, int, const float*, const float*, const float*, float*);
template void linear_forward<double>(int, int, int, const double*, const double*, const double*, double*);
template void linear_backward<float>(int, int, int, const float*, const float*, const float*, float*, float*,
                                     float*);
template void linear_backward<double>(int, int, int, const double*, const double*, const double*, double*,
                                      double*, double*);

}  // namespace rnnkit
