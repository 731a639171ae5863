// Run-time choice of the packed-GEMM kernel: the widest vector unit this CPU has.
#include "rnnkit/gemm/packed_gemm.h"

#include <algorithm>
#include <cstddef>
#include <type_traits>

#include "rnnkit/gemm/panel_gemv.h"

namespace rnnkit {

#define RNNKIT_DECLARE(isa)                                                                              \
    void packed_gemm_##isa(int, int, int, const float*, int, const float*, bool, float*, int);          \
    void packed_gemm_##isa(int, int, int, const double*, int, const double*, bool, double*, int);
RNNKIT_DECLARE(avx512)
RNNKIT_DECLARE(avx2)
RNNKIT_DECLARE(generic)
#undef RNNKIT_DECLARE

namespace {
enum class Isa { Avx512, Avx2, Generic };

Isa detect() {
#if defined(__x86_64__)
    __builtin_cpu_init();
    if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512vl") &&
        __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512bw"))
        return Isa::Avx512;
    if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return Isa::Avx2;
#endif
    return Isa::Generic;
}

const Isa isa = detect();
}  // namespace

#if defined(__x86_64__)
void pack_blocks_avx512(int panels, int k16, const float* w, std::size_t stride_n, float* out, int panel_k);
#endif

bool pack_blocks_transposed(int panels, int k16, const float* w, std::size_t stride_n, float* out, int panel_k) {
#if defined(__x86_64__)
    if (isa == Isa::Avx512) return pack_blocks_avx512(panels, k16, w, stride_n, out, panel_k), true;
#endif
    return false;
}

// One row of A (a batch of one): a matrix-vector product. The GEMM kernel would run it on its NP
// chains of multiply-adds, each waiting on the last; panel_gemv keeps kGemvAccumulators chains and
// prefetches the panels, so the step streams its weights at the cache's speed.
template <class W>
void packed_gemv(int n, int k, const float* a, const W* packed, bool accumulate, float* c) {
    for (int p = 0; p * kPanel < n; ++p) {
        float* y = c + std::size_t(p) * kPanel;
        panel_gemv(packed + std::size_t(p) * k * kPanel, nullptr, 0, a, k, accumulate ? y : nullptr,
                   std::min(kPanel, n - p * kPanel), y);
    }
}

template void packed_gemv<float>(int, int, const float*, const float*, bool, float*);
template void packed_gemv<std::uint16_t>(int, int, const float*, const std::uint16_t*, bool, float*);

template <class T>
void packed_gemm(int m, int n, int k, const T* a, int lda, const T* packed, bool accumulate, T* c, int ldc) {
    if (m <= 0 || n <= 0) return;
    if constexpr (std::is_same_v<T, float>)
        if (m == 1) return packed_gemv(n, k, a, packed, accumulate, c);
    switch (isa) {
        case Isa::Avx512: return packed_gemm_avx512(m, n, k, a, lda, packed, accumulate, c, ldc);
        case Isa::Avx2: return packed_gemm_avx2(m, n, k, a, lda, packed, accumulate, c, ldc);
        case Isa::Generic: return packed_gemm_generic(m, n, k, a, lda, packed, accumulate, c, ldc);
    }
}

const char* packed_gemm_kernel() {
    switch (isa) {
        case Isa::Avx512: return "avx512";
        case Isa::Avx2: return "avx2";
        case Isa::Generic: break;
    }
    return "generic";
}

template void packed_gemm<float>(int, int, int, const float*, int, const float*, bool, float*, int);
template void packed_gemm<double>(int, int, int, const double*, int, const double*, bool, double*, int);

}  // namespace rnnkit
