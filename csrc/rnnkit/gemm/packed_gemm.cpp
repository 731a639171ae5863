// Run-time choice of the packed-GEMM kernel: the widest vector unit this CPU has.
#include "rnnkit/gemm/packed_gemm.h"

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

template <class T>
void packed_gemm(int m, int n, int k, const T* a, int lda, const T* packed, bool accumulate, T* c, int ldc) {
    if (m <= 0 || n <= 0) return;
    switch (isa) {
        case Isa::Avx512: return packed_gemm_avx512(m, n, k, a, lda, packed, accumulate, c, ldc);
        case Isa::Avx2: return packed_gemm_avx2(m, n, k, a, lda, packed, accumulate, c, ldc);
        case Isa::Generic: return packed_gemm_generic(m, n, k, a, lda, packed, accumulate, c, ldc);
    }
}

template void packed_gemm<float>(int, int, int, const float*, int, const float*, bool, float*, int);
template void packed_gemm<double>(int, int, int, const double*, int, const double*, bool, double*, int);

}  // namespace rnnkit
