// The 8-bit panel_gemv.h kernel for AVX-512: a row pair of 32 int8 weights widened to int16 (vpmovsxbw)
// and multiplied with two 16-bit quantised values, summed into int32 lanes by AVX512-VNNI's vpdpwssd
// where the CPU has it (32 products in two instructions where the float kernel needs six: widen to
// int32, convert, multiply-add for each 16), else by vpmaddwd + vpaddd (three). Both sums are exact, so
// both give the same bits. Picked at run time by panel_gemv.cpp.
#if defined(__x86_64__)
// No avx512vnni here: vpdpwssd is written in assembly, so the compiler cannot fuse the other variant's
// vpmaddwd + vpaddd into an instruction that CPU lacks.
#pragma GCC target("avx512f,avx512bw,avx512dq")
#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "rnnkit/gemm/panel_gemv.h"

namespace rnnkit {

namespace {

// GCC 12's unmasked forms of these conversions trip -Wmaybe-uninitialized; zero-masked with every lane
// set they compile to the same instructions.
inline __m512i widen_int64(__m256i a) { return _mm512_maskz_cvtepi32_epi64(0xff, a); }
template <int Half>
inline __m256i half_of(__m512i a) { return _mm512_maskz_extracti64x4_epi64(0xf, a, Half); }
template <int Half>
inline __m256 half_of(__m512 a) { return _mm512_maskz_extractf32x8_ps(0xff, a, Half); }
inline __m512d to_double(__m256 a) { return _mm512_maskz_cvtps_pd(0xff, a); }
inline __m256 to_float(__m512d a) { return _mm512_maskz_cvtpd_ps(0xff, a); }

// A row pair adds at most 2 * 127 * 32767 to a lane, so this many pairs sum below 2^31 in int32 lanes
// before they are widened to int64.
constexpr int kChunkPairs = 256;

// acc += the products of row pair w with the pair z[0], z[1]. vpdpwssd in assembly also because GCC 12
// copies the accumulator of _mm512_dpwssd_epi32 to another register and back around every instruction
// (two extra moves per multiply-add, which made the loop issue-bound).
template <bool Vnni>
inline __m512i dot_pair(__m512i acc, const std::int8_t* w, const std::int16_t* z) {
    std::int32_t pair;
    std::memcpy(&pair, z, sizeof pair);
    const __m512i wide = _mm512_cvtepi8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(w)));
    const __m512i zz = _mm512_set1_epi32(pair);
    if constexpr (Vnni) {
        asm("vpdpwssd %2, %1, %0" : "+v"(acc) : "v"(wide), "v"(zz));
        return acc;
    } else {
        return _mm512_add_epi32(acc, _mm512_madd_epi16(wide, zz));
    }
}

// The exact sums of q[k][j] * z[k] over K rows (`pairs` row pairs) as two halves of 8 int64 lanes.
template <bool Vnni>
inline void sums(const std::int8_t* w, const std::int16_t* z, int pairs, __m512i& lo, __m512i& hi) {
    constexpr int A = kGemvAccumulators;
    lo = hi = _mm512_setzero_si512();
    for (int c = 0; c < pairs; c += kChunkPairs) {
        const int n = c + kChunkPairs < pairs ? kChunkPairs : pairs - c;
        __m512i acc[A];
        for (int i = 0; i < A; ++i) acc[i] = _mm512_setzero_si512();
        int r = 0;
        for (; r + A <= n; r += A, w += 32 * A, z += 2 * A)
            for (int i = 0; i < A; ++i) acc[i] = dot_pair<Vnni>(acc[i], w + 32 * i, z + 2 * i);
        for (; r < n; ++r, w += 32, z += 2) acc[0] = dot_pair<Vnni>(acc[0], w, z);
        for (int s = A / 2; s > 0; s /= 2)
            for (int i = 0; i < s; ++i) acc[i] = _mm512_add_epi32(acc[i], acc[i + s]);
        lo = _mm512_add_epi64(lo, widen_int64(half_of<0>(acc[0])));
        hi = _mm512_add_epi64(hi, widen_int64(half_of<1>(acc[0])));
    }
}

template <bool Vnni>
void gemv(const std::int8_t* p, Quantized x, int kx, Quantized h, int kh, const float* init, int n, float* y) {
    const __mmask16 lanes = __mmask16((1u << n) - 1);
    const __m512 scale = _mm512_loadu_ps(reinterpret_cast<const float*>(p));
    p += kScaleRows * 16;
    __m512d t_lo = _mm512_setzero_pd(), t_hi = _mm512_setzero_pd();
    const Quantized z[2] = {x, h};
    const int K[2] = {kx, kh};
    for (int s = 0; s < 2; ++s) {
        if (K[s] == 0) continue;
        const int pairs = (K[s] + 1) / 2;
        __m512i lo, hi;
        sums<Vnni>(p, z[s].q, pairs, lo, hi);
        p += 32 * pairs;
        const __m512d zs = _mm512_set1_pd(double(z[s].scale));
        t_lo = _mm512_fmadd_pd(zs, _mm512_cvtepi64_pd(lo), t_lo);
        t_hi = _mm512_fmadd_pd(zs, _mm512_cvtepi64_pd(hi), t_hi);
    }
    const __m512 in = init ? _mm512_maskz_loadu_ps(lanes, init) : _mm512_setzero_ps();
    const __m256 y_lo = to_float(_mm512_fmadd_pd(to_double(half_of<0>(scale)), t_lo, to_double(half_of<0>(in))));
    const __m256 y_hi = to_float(_mm512_fmadd_pd(to_double(half_of<1>(scale)), t_hi, to_double(half_of<1>(in))));
    _mm512_mask_storeu_ps(y, lanes, _mm512_insertf32x8(_mm512_castps256_ps512(y_lo), y_hi, 1));
}

}  // namespace

void panel_gemv_avx512(const std::int8_t* p, Quantized x, int kx, Quantized h, int kh, const float* init, int n,
                       float* y, bool vnni) {
    if (vnni)
        gemv<true>(p, x, kx, h, kh, init, n, y);
    else
        gemv<false>(p, x, kx, h, kh, init, n, y);
}

}  // namespace rnnkit
#endif
