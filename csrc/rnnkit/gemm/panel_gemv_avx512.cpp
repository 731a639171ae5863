// The float and half panel_gemv.h kernels for AVX-512: one 16-float register per panel row, half rows
// widened by vcvtph2ps on the way in. Picked at run time by panel_gemv.cpp.
#if defined(__x86_64__)
#pragma GCC target("avx512f,f16c,fma,avx2")
#include <immintrin.h>

#include <cstdint>

#include "rnnkit/gemm/panel_gemv.h"

namespace rnnkit {

namespace {

inline __m512 load_row(const float* p) { return _mm512_loadu_ps(p); }
// Zero-masked with every lane set, which compiles to the plain instructions: GCC 12's unmasked
// intrinsics trip -Wmaybe-uninitialized.
inline __m512 load_row(const std::uint16_t* p) {
    return _mm512_maskz_cvtph_ps(__mmask16(0xffff), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// The weights come from L3 (a float or half model is larger than L2), and the hardware prefetcher stops
// at every 4 KiB page: prefetching this far ahead keeps the loads streaming (2x512 LSTM, float: 76 -> 66
// us a character).
constexpr int kPrefetchBytes = 2048;

// kGemvAccumulators partial sums (panel_gemv.h).
template <class W>
inline void gemv(const W* p, const float* x, int kx, const float* h, int kh, const float* init, int n, float* y) {
    const __mmask16 lanes = __mmask16((1u << n) - 1);
    __m512 acc[kGemvAccumulators];
    acc[0] = init ? _mm512_maskz_loadu_ps(lanes, init) : _mm512_setzero_ps();
    for (int i = 1; i < kGemvAccumulators; ++i) acc[i] = _mm512_setzero_ps();
    const float* z[2] = {x, h};
    const int K[2] = {kx, kh};
    for (int s = 0; s < 2; ++s) {
        const float* v = z[s];
        int k = 0;
        for (; k + kGemvAccumulators <= K[s]; k += kGemvAccumulators, p += 16 * kGemvAccumulators) {
            for (unsigned b = 0; b < 16 * kGemvAccumulators * sizeof(W); b += 64)
                _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes + b, _MM_HINT_T0);
            for (int i = 0; i < kGemvAccumulators; ++i)
                acc[i] = _mm512_fmadd_ps(load_row(p + 16 * i), _mm512_set1_ps(v[k + i]), acc[i]);
        }
        for (; k < K[s]; ++k, p += 16) acc[0] = _mm512_fmadd_ps(load_row(p), _mm512_set1_ps(v[k]), acc[0]);
    }
    for (int w = kGemvAccumulators / 2; w > 0; w /= 2)
        for (int i = 0; i < w; ++i) acc[i] = _mm512_add_ps(acc[i], acc[i + w]);
    _mm512_mask_storeu_ps(y, lanes, acc[0]);
}

}  // namespace

void panel_gemv_avx512(const float* p, const float* x, int kx, const float* h, int kh, const float* init, int n,
                       float* y) {
    gemv(p, x, kx, h, kh, init, n, y);
}

void panel_gemv_avx512(const std::uint16_t* p, const float* x, int kx, const float* h, int kh, const float* init,
                       int n, float* y) {
    gemv(p, x, kx, h, kh, init, n, y);
}

}  // namespace rnnkit
#endif
