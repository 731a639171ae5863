#include "projection_grad.h"

#include <omp.h>

#include <cstring>

#include "blas.h"
#include "partition.h"

namespace rnnkit {

template <class T>
void embedded_projection_backward(std::size_t n, int V, int G, int E, const std::int64_t* ids, const T* dP,
                                  const T* w_ih, const T* table, T* S, T* d_table, T* d_w_ih) {
    blas_single_threaded();
#pragma omp parallel
    {
        // Each thread owns a share of the G columns of S, which are its rows of d_w_ih: no two threads
        // write one value, and each value is summed in row order whatever the thread count.
        const Units own = share_of(omp_get_thread_num(), omp_get_num_threads(), 0, G);
        for (int v = 0; v < V; ++v) std::memset(S + std::size_t(v) * G + own.lo, 0, own.size() * sizeof(T));
        for (std::size_t r = 0; r < n; ++r) {
            T* s = S + std::size_t(ids[r]) * G;
            const T* d = dP + r * G;
#pragma omp simd
            for (int j = own.lo; j < own.hi; ++j) s[j] += d[j];
        }
        if (!table) {
            for (int v = 0; v < V; ++v)
                for (int g = own.lo; g < own.hi; ++g) d_w_ih[std::size_t(g) * V + v] += S[std::size_t(v) * G + g];
        } else {
            if (own.size() > 0)
                gemm<T>(true, false, own.size(), E, V, T(1), S + own.lo, G, table, E, T(1),
                        d_w_ih + std::size_t(own.lo) * E, E);
            // A row of d_table reads every column of S.
#pragma omp barrier
            const Span<int> syms = even_share(omp_get_thread_num(), omp_get_num_threads(), V);
            if (syms.hi > syms.lo)
                gemm<T>(false, false, syms.hi - syms.lo, E, G, T(1), S + std::size_t(syms.lo) * G, G, w_ih, E, T(1),
                        d_table + std::size_t(syms.lo) * E, E);
        }
    }
}

template void embedded_projection_backward<float>(std::size_t, int, int, int, const std::int64_t*, const float*,
                                                  const float*, const float*, float*, float*, float*);
template void embedded_projection_backward<double>(std::size_t, int, int, int, const std::int64_t*, const double*,
                                                   const double*, const double*, double*, double*, double*);

}  // namespace rnnkit
