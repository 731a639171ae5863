#include "rnnkit/ops/optim.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <vector>

#include "rnnkit/cells/activations.h"
#include "rnnkit/rnnkit.h"

namespace rnnkit {

namespace {

// Below this many values a second thread costs more than it saves.
constexpr std::size_t kParallelMin = std::size_t(1) << 15;

int threads_for(std::size_t n) { return n < kParallelMin ? 1 : get_num_threads(); }

// One rule's loop, compiled per ISA so it runs at full vector width in a portable build.
template <class T, class Rule>
RNNKIT_MULTIVERSION void update_loop(std::size_t n, T* p, const T* g, T* s1, T* s2, Rule rule) {
#pragma omp parallel for simd schedule(static) num_threads(threads_for(n))
    for (std::size_t i = 0; i < n; ++i) rule(p[i], g[i], s1[i], s2[i]);
}

}  // namespace

template <class T>
void apply_update(const Update& u, std::size_t n, T* p, const T* g, T* s1, T* s2) {
    const T lr = T(u.lr), a = T(u.a), b = T(u.b), eps = T(u.eps);
    if (!s2) s2 = s1;  // the one-buffer rules never read it
    switch (u.rule) {
        case UpdateRule::Sgd:
            return update_loop(n, p, g, s1, s2, [=](T& pi, T gi, T& v, T&) {
                v = a * v + gi;
                pi -= lr * v;
            });
        case UpdateRule::Adagrad:
            return update_loop(n, p, g, s1, s2, [=](T& pi, T gi, T& s, T&) {
                s += gi * gi;
                pi -= lr * gi / std::sqrt(s + eps);
            });
        case UpdateRule::RmsProp:
            return update_loop(n, p, g, s1, s2, [=](T& pi, T gi, T& s, T&) {
                s = a * s + (T(1) - a) * gi * gi;
                pi -= lr * gi / (std::sqrt(s) + eps);
            });
        case UpdateRule::Adam: {
            const T step_size = T(u.lr / (1.0 - std::pow(u.a, double(u.step))));
            const T correction2 = T(std::sqrt(1.0 - std::pow(u.b, double(u.step))));
            return update_loop(n, p, g, s1, s2, [=](T& pi, T gi, T& m, T& v) {
                m += (T(1) - a) * (gi - m);
                v = b * v + (T(1) - b) * gi * gi;
                pi -= step_size * m / (std::sqrt(v) / correction2 + eps);
            });
        }
    }
}

template <class T>
double sum_of_squares(std::size_t n, const T* x) {
    constexpr std::size_t block = 4096;
    const std::size_t blocks = (n + block - 1) / block;
    std::vector<double> partial(blocks);
#pragma omp parallel for schedule(static) num_threads(threads_for(n))
    for (std::size_t k = 0; k < blocks; ++k) {
        double s = 0.0;
        for (std::size_t i = k * block; i < std::min(n, (k + 1) * block); ++i) s += double(x[i]) * double(x[i]);
        partial[k] = s;
    }
    double total = 0.0;
    for (double s : partial) total += s;
    return total;
}

template void apply_update<float>(const Update&, std::size_t, float*, const float*, float*, float*);
template void apply_update<double>(const Update&, std::size_t, double*, const double*, double*, double*);
template double sum_of_squares<float>(std::size_t, const float*);
template double sum_of_squares<double>(std::size_t, const double*);

}  // namespace rnnkit
