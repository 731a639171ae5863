// The AVX-512 transposer of pack_panels (packed_gemm.h): a 16 x 16 block of W's rows becomes 16 panel
// rows in registers. Picked at run time by packed_gemm.cpp.
#if defined(__x86_64__)
#pragma GCC target("avx512f")
#include <immintrin.h>

#include <cstddef>

namespace rnnkit {

namespace avx512 {  // named so that every symbol here says its instruction set (tests/test_portability.py)
namespace {

// Every lane: zero-masked forms with all lanes set compile to the plain instructions, whose intrinsics
// trip GCC 12's -Wuninitialized.
constexpr __mmask16 kAll = 0xffff;

// dst[i][j] = src[j][i] for a 16 x 16 block, src rows ld apart, dst rows 16 apart: pairs of rows
// interleaved by 1, then 2, 4 and 8 values.
void transpose16(const float* src, std::size_t ld, float* dst) {
    __m512 r[16], t[16];
    for (int i = 0; i < 16; ++i) r[i] = _mm512_maskz_loadu_ps(kAll, src + i * ld);
    for (int i = 0; i < 8; ++i) {
        t[2 * i] = _mm512_maskz_unpacklo_ps(kAll, r[2 * i], r[2 * i + 1]);
        t[2 * i + 1] = _mm512_maskz_unpackhi_ps(kAll, r[2 * i], r[2 * i + 1]);
    }
    for (int i = 0; i < 4; ++i) {
        r[4 * i] = _mm512_maskz_shuffle_ps(kAll, t[4 * i], t[4 * i + 2], 0x44);
        r[4 * i + 1] = _mm512_maskz_shuffle_ps(kAll, t[4 * i], t[4 * i + 2], 0xEE);
        r[4 * i + 2] = _mm512_maskz_shuffle_ps(kAll, t[4 * i + 1], t[4 * i + 3], 0x44);
        r[4 * i + 3] = _mm512_maskz_shuffle_ps(kAll, t[4 * i + 1], t[4 * i + 3], 0xEE);
    }
    for (int i = 0; i < 4; ++i) {
        t[i] = _mm512_maskz_shuffle_f32x4(kAll, r[i], r[4 + i], 0x88);
        t[4 + i] = _mm512_maskz_shuffle_f32x4(kAll, r[i], r[4 + i], 0xDD);
        t[8 + i] = _mm512_maskz_shuffle_f32x4(kAll, r[8 + i], r[12 + i], 0x88);
        t[12 + i] = _mm512_maskz_shuffle_f32x4(kAll, r[8 + i], r[12 + i], 0xDD);
    }
    for (int i = 0; i < 4; ++i) {
        r[i] = _mm512_maskz_shuffle_f32x4(kAll, t[i], t[8 + i], 0x88);
        r[8 + i] = _mm512_maskz_shuffle_f32x4(kAll, t[i], t[8 + i], 0xDD);
        r[4 + i] = _mm512_maskz_shuffle_f32x4(kAll, t[4 + i], t[12 + i], 0x88);
        r[12 + i] = _mm512_maskz_shuffle_f32x4(kAll, t[4 + i], t[12 + i], 0xDD);
    }
    for (int i = 0; i < 16; ++i) _mm512_storeu_ps(dst + i * 16, r[i]);
}

}  // namespace
}  // namespace avx512

void pack_blocks_avx512(int panels, int k16, const float* w, std::size_t stride_n, float* out, int panel_k) {
    for (int p = 0; p < panels; ++p)
        for (int k0 = 0; k0 < k16; k0 += 16)
            avx512::transpose16(w + std::size_t(p) * 16 * stride_n + k0, stride_n,
                                out + (std::size_t(p) * panel_k + k0) * 16);
}

}  // namespace rnnkit
#endif
