#include "rnnkit/ops/output_loss.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "rnnkit/cells/activations.h"
#include "rnnkit/gemm/blas.h"
#include "rnnkit/ops/linear.h"
#include "rnnkit/support/partition.h"

namespace rnnkit {

namespace {

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
    blas_single_threaded();
#pragma omp parallel num_threads(linear_threads(N, I, V))
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
    }
    // The gradients of the output layer itself, from dlogits (now in `logits`).
    if (grad) linear_backward<T>(N, I, V, a.x, a.w, logits, dx, dw, db);
    double loss = 0.0;
    for (int n = 0; n < N; ++n) loss += (a.weights ? double(a.weights[n]) : 1.0) * nll[n];
    return loss / total_weight;
}

template double output_loss<float>(const OutputLossArgs<float>&, float*, float*, float*, float*);
template double output_loss<double>(const OutputLossArgs<double>&, double*, double*, double*, double*);

}  // namespace rnnkit
