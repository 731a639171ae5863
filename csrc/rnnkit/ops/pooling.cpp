// Pooling forward and backward (pooling.h), as in python/rnnkit/reference/pooling.py.
//
// Each batch element is independent, so the threads share the B elements; a thread reads and writes
// only its elements' rows of x and dx. The work is a few passes over T*B*F numbers: below 2^16 of them
// a second thread costs more than it saves.
#include "rnnkit/ops/pooling.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "rnnkit/rnnkit.h"

namespace rnnkit {

namespace {

int pool_threads(int steps, int B, int F) {
    if (static_cast<long long>(steps) * B * F < (1 << 16)) return 1;
    return std::max(1, std::min(get_num_threads(), B));
}

int valid_steps(const std::int64_t* lengths, int b, int steps) {
    return lengths ? static_cast<int>(lengths[b]) : steps;
}

void check(int steps, int B, int F, const std::int64_t* lengths) {
    if (steps < 1 || B < 1 || F < 1) throw std::invalid_argument("pooling: T, B and F must be at least 1");
    if (lengths)
        for (int b = 0; b < B; ++b)
            if (lengths[b] < 1 || lengths[b] > steps) throw std::invalid_argument("pooling: lengths must lie in 1..T");
}

}  // namespace

template <class T>
void pool_forward(PoolKind kind, int steps, int B, int F, int split, const T* x, const std::int64_t* lengths,
                  T* out, std::int32_t* index) {
    check(steps, B, F, lengths);
    if (split < 0 || split > F) throw std::invalid_argument("pooling: split must lie in 0..F");
    if (kind != PoolKind::Mean && !index) throw std::invalid_argument("pooling: last and max need index");
    const std::size_t row = static_cast<std::size_t>(B) * F;  // one step of x
#pragma omp parallel for num_threads(pool_threads(steps, B, F)) schedule(static)
    for (int b = 0; b < B; ++b) {
        const int n = valid_steps(lengths, b, steps);
        T* o = out + static_cast<std::size_t>(b) * F;
        std::int32_t* idx = index ? index + static_cast<std::size_t>(b) * F : nullptr;
        const T* xb = x + static_cast<std::size_t>(b) * F;  // x[0, b]
        if (kind == PoolKind::Last) {
            const T* end = xb + (n - 1) * row;  // x[n - 1, b]
            for (int f = 0; f < split; ++f) o[f] = end[f], idx[f] = n - 1;
            for (int f = split; f < F; ++f) o[f] = xb[f], idx[f] = 0;
        } else if (kind == PoolKind::Mean) {
            std::copy(xb, xb + F, o);
            for (int t = 1; t < n; ++t) {
                const T* xt = xb + t * row;
#pragma omp simd
                for (int f = 0; f < F; ++f) o[f] += xt[f];
            }
            const T scale = T(1) / T(n);
#pragma omp simd
            for (int f = 0; f < F; ++f) o[f] *= scale;
        } else {
            std::copy(xb, xb + F, o);
            std::fill(idx, idx + F, 0);
            for (int t = 1; t < n; ++t) {
                const T* xt = xb + t * row;
#pragma omp simd
                for (int f = 0; f < F; ++f) {
                    const bool above = xt[f] > o[f];  // strictly: the first step holding the maximum wins
                    o[f] = above ? xt[f] : o[f];
                    idx[f] = above ? t : idx[f];
                }
            }
        }
    }
}

template <class T>
void pool_backward(PoolKind kind, int steps, int B, int F, const std::int64_t* lengths, const std::int32_t* index,
                   const T* dout, T* dx) {
    check(steps, B, F, lengths);
    if (kind != PoolKind::Mean) {
        if (!index) throw std::invalid_argument("pooling: last and max need index");
        // A bad index would write outside dx: checked here, before the threads start.
        for (int b = 0; b < B; ++b)
            for (int f = 0; f < F; ++f) {
                const std::int32_t i = index[static_cast<std::size_t>(b) * F + f];
                if (i < 0 || i >= valid_steps(lengths, b, steps))
                    throw std::invalid_argument("pooling: index must lie within each element's valid steps");
            }
    }
    const std::size_t row = static_cast<std::size_t>(B) * F;
#pragma omp parallel for num_threads(pool_threads(steps, B, F)) schedule(static)
    for (int b = 0; b < B; ++b) {
        const int n = valid_steps(lengths, b, steps);
        const T* d = dout + static_cast<std::size_t>(b) * F;
        T* db = dx + static_cast<std::size_t>(b) * F;  // dx[0, b]
        for (int t = 0; t < steps; ++t) std::memset(db + t * row, 0, sizeof(T) * F);
        if (kind == PoolKind::Mean) {
            const T scale = T(1) / T(n);
            for (int t = 0; t < n; ++t) {
                T* dt = db + t * row;
#pragma omp simd
                for (int f = 0; f < F; ++f) dt[f] = d[f] * scale;
            }
        } else {
            const std::int32_t* idx = index + static_cast<std::size_t>(b) * F;
            for (int f = 0; f < F; ++f) db[idx[f] * row + f] = d[f];
        }
    }
}

template void pool_forward<float>(PoolKind, int, int, int, int, const float*, const std::int64_t*, float*,
                                  std::int32_t*);
template void pool_forward<double>(PoolKind, int, int, int, int, const double*, const std::int64_t*, double*,
                                   std::int32_t*);
template void pool_backward<float>(PoolKind, int, int, int, const std::int64_t*, const std::int32_t*, const float*,
                                   float*);
template void pool_backward<double>(PoolKind, int, int, int, const std::int64_t*, const std::int32_t*,
                                    const double*, double*);

}  // namespace rnnkit
