#include "output_loss.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "activations.h"
#include "blas.h"
#include "partition.h"
#include "rnnkit.h"

namespace rnnkit {

namespace {

// Below this many multiply-adds a second thread costs more than it saves.
constexpr double kParallelWork = 1 << 18;

// Row n's loss term (unweighted), turning its logits into softmax probabilities minus the one-hot target,
// times `scale` (w_n / sum w) when `grad`. Compiled per ISA so the exponentials vectorise.
template <class T>
RNNKIT_MULTIVERSION double row_loss(T* z, const T* bias, int V, std::int64_t target, bool grad, T scale) {
    if (bias)
        for (int v = 0; v < V; ++v) z[v] += bias[v];
    T top = z[0];
    for (int v = 1; v < V; ++v) top = std::max(top, z[v]);
    const double target_logit = double(z[target] - top);
    T sum = T(0);
    for (int v = 0; v < V; ++v) {
        z[v] = exp_approx(z[v] - top);
        sum += z[v];
    }
    if (grad) {
        const T factor = scale / sum;
        for (int v = 0; v < V; ++v) z[v] *= factor;
        z[target] -= scale;
    }
    return std::log(double(sum)) - target_logit;
}

}  // namespace

template <class T>
double output_loss(const OutputLossArgs<T>& a, T* logits, T* dx, T* dw, T* db) {
    const int N = a.N, I = a.I, V = a.V;
    const bool grad = dx != nullptr;
    double total_weight = 0.0;
    for (int n = 0; n < N; ++n) total_weight += a.weights ? double(a.weights[n]) : 1.0;
    std::vector<double> nll(N);
    const int threads = double(N) * V * I < kParallelWork ? 1 : get_num_threads();
    blas_single_threaded();
#pragma omp parallel num_threads(threads)
    {
        const int tid = omp_get_thread_num(), nt = omp_get_num_threads();
        const Span<int> rows = even_share(tid, nt, N);
        const int m = rows.hi - rows.lo;
        T* z = logits + std::size_t(rows.lo) * V;
        if (m > 0) gemm<T>(false, true, m, V, I, T(1), a.x + std::size_t(rows.lo) * I, I, a.w, I, T(0), z, V);
        for (int n = rows.lo; n < rows.hi; ++n) {
            const T scale = T((a.weights ? double(a.weights[n]) : 1.0) / total_weight);
            nll[n] = row_loss(logits + std::size_t(n) * V, a.b, V, a.targets[n], grad, scale);
        }
        if (grad) {
            if (m > 0) gemm<T>(false, false, m, I, V, T(1), z, V, a.w, I, T(0), dx + std::size_t(rows.lo) * I, I);
#pragma omp barrier
            const Span<int> cls = even_share(tid, nt, V);
            if (cls.hi > cls.lo)
                gemm<T>(true, false, cls.hi - cls.lo, I, N, T(1), logits + cls.lo, V, a.x, I, T(1),
                        dw + std::size_t(cls.lo) * I, I);
            if (db)
                for (int n = 0; n < N; ++n)
                    for (int v = cls.lo; v < cls.hi; ++v) db[v] += logits[std::size_t(n) * V + v];
        }
    }
    double loss = 0.0;
    for (int n = 0; n < N; ++n) loss += (a.weights ? double(a.weights[n]) : 1.0) * nll[n];
    return loss / total_weight;
}

template double output_loss<float>(const OutputLossArgs<float>&, float*, float*, float*, float*);
template double output_loss<double>(const OutputLossArgs<double>&, double*, double*, double*, double*);

}  // namespace rnnkit
