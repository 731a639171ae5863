// How the kernels split work between OpenMP threads: even shares of rows, or of units in whole blocks
// of 16 (one AVX-512 register of floats).
#pragma once

#include <algorithm>
#include <cstdint>

namespace rnnkit {

template <class I>
struct Span {
    I lo, hi;
};

// Thread i of n's part [lo, hi) of `count` items; the parts differ in size by at most one.
template <class I>
Span<I> even_share(int i, int n, I count) {
    return {I(std::int64_t(count) * i / n), I(std::int64_t(count) * (i + 1) / n)};
}

// Below this many rows per thread a product is split by its output columns instead of its rows, so that
// a product of few rows (one decoding step: a GEMV) still reads each thread's part of the weight and
// not all of it on one thread.
constexpr int kMinRowsPerThread = 16;

// Thread i of n's block of a rows x cols output: a share of the rows, or of the columns when the rows
// are too few to split.
struct Block {
    Span<int> rows, cols;
    bool empty() const { return rows.hi <= rows.lo || cols.hi <= cols.lo; }
};

inline Block output_share(int i, int n, int rows, int cols) {
    if (rows >= kMinRowsPerThread * n) return {even_share(i, n, rows), {0, cols}};
    return {{0, rows}, even_share(i, n, cols)};
}

struct Units {
    int lo, hi;
    int size() const { return hi - lo; }
};

// Thread `i` of `n` gets whole blocks of 16 units (one AVX-512 register of floats).
inline Units units_of(int i, int n, int H) {
    const int blocks = (H + 15) / 16;
    return {std::min(H, blocks * i / n * 16), std::min(H, blocks * (i + 1) / n * 16)};
}

// Rows [lo, hi) of a weight, thread `i` of `n`'s share in whole blocks of 16.
inline Units share_of(int i, int n, int lo, int hi) {
    const Units u = units_of(i, n, hi - lo);
    return {lo + u.lo, lo + u.hi};
}

}  // namespace rnnkit
