// The panel_gemv.h kernels for AVX-512: one 16-float register per panel row, half rows widened by
// vcvtph2ps on the way in. Picked at run time by panel_gemv.cpp.
#if defined(__x86_64__)
#pragma GCC target("avx512f,f16c,fma,avx2")
#include <immintrin.h>

#include <cstdint>

namespace rnnkit {

namespace {

inline __m512 load_row(const float* p) { return _mm512_loadu_ps(p); }
// Zero-masked with every lane set, which compiles to the plain vcvtph2ps: GCC 12's unmasked intrinsic
// trips -Wmaybe-uninitialized.
inline __m512 load_row(const std::uint16_t* p) {
    return _mm512_maskz_cvtph_ps(__mmask16(0xffff), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
}

// The weights come from L3 (a model is larger than L2), and the hardware prefetcher stops at every 4 KiB
// page: prefetching this far ahead keeps the loads streaming (2x512 LSTM, float: 76 -> 66 us a character).
constexpr int kPrefetchBytes = 2048;

// Four accumulators, so that four rows are in flight while their loads arrive.
template <class W>
inline void gemv(const W* p, const float* x, int kx, const float* h, int kh, const float* init, int n, float* y) {
    const __mmask16 lanes = __mmask16((1u << n) - 1);
    __m512 a0 = init ? _mm512_maskz_loadu_ps(lanes, init) : _mm512_setzero_ps();
    __m512 a1 = _mm512_setzero_ps(), a2 = a1, a3 = a1;
    const float* z[2] = {x, h};
    const int K[2] = {kx, kh};
    for (int s = 0; s < 2; ++s) {
        const float* v = z[s];
        int k = 0;
        for (; k + 4 <= K[s]; k += 4, p += 64) {
            for (unsigned b = 0; b < 64 * sizeof(W); b += 64)
                _mm_prefetch(reinterpret_cast<const char*>(p) + kPrefetchBytes + b, _MM_HINT_T0);
            a0 = _mm512_fmadd_ps(load_row(p), _mm512_set1_ps(v[k]), a0);
            a1 = _mm512_fmadd_ps(load_row(p + 16), _mm512_set1_ps(v[k + 1]), a1);
            a2 = _mm512_fmadd_ps(load_row(p + 32), _mm512_set1_ps(v[k + 2]), a2);
            a3 = _mm512_fmadd_ps(load_row(p + 48), _mm512_set1_ps(v[k + 3]), a3);
        }
        for (; k < K[s]; ++k, p += 16) a0 = _mm512_fmadd_ps(load_row(p), _mm512_set1_ps(v[k]), a0);
    }
    _mm512_mask_storeu_ps(y, lanes, _mm512_add_ps(_mm512_add_ps(a0, a1), _mm512_add_ps(a2, a3)));
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
