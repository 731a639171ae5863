// The float and half panel_gemv.h kernels for AVX-512: one 16-float register per panel row, half rows
// widened by vcvtph2ps on the way in; and the conversions to half. Picked at run time by panel_gemv.cpp.
#if defined(__x86_64__)
#pragma GCC target("avx512f,f16c,fma,avx2")
#include <immintrin.h>

#include <cstddef>
#include <cstdint>

#include "rnnkit/gemm/panel_gemv.h"

namespace rnnkit {

namespace avx512 {  // named so that every symbol here says its instruction set (tests/test_portability.py)
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

// Halves rounded to nearest even by vcvtps2ph, which, unlike float arithmetic, ignores MXCSR's flush
// to zero: a weight below half's smallest normal keeps its subnormal value, as to_half's portable code
// gives it (masked with every lane set, as load_row is). Out holds the halves (Out = std::uint16_t) or
// them widened back (Out = float). Returns whether every value is finite in half.
template <class Out>
inline bool convert(const float* in, std::size_t n, Out* out) {
    const __m256i magnitude = _mm256_set1_epi16(0x7fff);
    __m256i largest = _mm256_setzero_si256();
    auto one = [&](__m512 v, Out* to) {
        const __m256i h = _mm512_maskz_cvtps_ph(__mmask16(0xffff), v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
        largest = _mm256_max_epu16(largest, _mm256_and_si256(h, magnitude));
        if constexpr (sizeof(Out) == sizeof(float))
            _mm512_storeu_ps(to, _mm512_maskz_cvtph_ps(__mmask16(0xffff), h));
        else
            _mm256_storeu_si256(reinterpret_cast<__m256i*>(to), h);
    };
    std::size_t i = 0;
    for (; i + 16 <= n; i += 16) one(_mm512_loadu_ps(in + i), out + i);
    if (i < n) {  // the last values through a vector padded with zeros
        alignas(64) float tail_in[16] = {};
        alignas(64) Out tail_out[16];
        for (std::size_t j = i; j < n; ++j) tail_in[j - i] = in[j];
        one(_mm512_load_ps(tail_in), tail_out);
        for (std::size_t j = i; j < n; ++j) out[j] = tail_out[j - i];
    }
    alignas(32) std::uint16_t lanes[16];
    _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), largest);
    std::uint16_t top = 0;
    for (std::uint16_t v : lanes) top = v > top ? v : top;
    return top < 0x7c00u;  // infinity, and NaN above
}

}  // namespace
}  // namespace avx512

bool to_half_avx512(const float* in, std::size_t n, std::uint16_t* out) { return avx512::convert(in, n, out); }

bool round_to_half_avx512(const float* in, std::size_t n, float* out) { return avx512::convert(in, n, out); }

void panel_gemv_avx512(const float* p, const float* x, int kx, const float* h, int kh, const float* init, int n,
                       float* y) {
    avx512::gemv(p, x, kx, h, kh, init, n, y);
}

void panel_gemv_avx512(const std::uint16_t* p, const float* x, int kx, const float* h, int kh, const float* init,
                       int n, float* y) {
    avx512::gemv(p, x, kx, h, kh, init, n, y);
}

}  // namespace rnnkit
#endif
