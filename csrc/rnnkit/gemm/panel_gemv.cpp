// panel_gemv.h: the portable kernels, the run-time choice of the AVX-512 ones, and the conversion to half.
#include "rnnkit/gemm/panel_gemv.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "rnnkit/cells/activations.h"

namespace rnnkit {

#if defined(__x86_64__)
void panel_gemv_avx512(const float*, const float*, int, const float*, int, const float*, int, float*);
void panel_gemv_avx512(const std::uint16_t*, const float*, int, const float*, int, const float*, int, float*);
void panel_gemv_avx512(const std::int8_t*, Quantized, int, Quantized, int, const float*, int, float*, bool vnni);
bool to_half_avx512(const float* in, std::size_t n, std::uint16_t* out);
bool round_to_half_avx512(const float* in, std::size_t n, float* out);

namespace {
const bool avx512 = [] {
    __builtin_cpu_init();
    return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("f16c");
}();
const bool avx512_int8 = avx512 && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512dq");
const bool vnni = avx512_int8 && __builtin_cpu_supports("avx512vnni");
}  // namespace
#endif

namespace {

RNNKIT_INLINE float widen(float w) { return w; }

// Branch-free, so that the loops over a panel row vectorise.
RNNKIT_INLINE float widen(std::uint16_t w) {
    const std::uint32_t em = w & 0x7fffu;  // exponent and mantissa
    std::uint32_t bits = (em << 13) + ((127u - 15u) << 23);             // rebias the exponent
    bits = em >= 0x7c00u ? bits + ((127u - 15u) << 23) : bits;          // inf, NaN: exponent all ones
    float f;
    std::memcpy(&f, &bits, sizeof f);
    f = em < 0x0400u ? float(int(em)) * 0x1p-24f : f;                   // zero, subnormal
    std::memcpy(&bits, &f, sizeof f);
    bits |= std::uint32_t(w & 0x8000u) << 16;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

// The same order of operations as the AVX-512 kernel (kGemvAccumulators partial sums).
template <class W>
RNNKIT_MULTIVERSION void portable_gemv(const W* p, const float* x, int kx, const float* h, int kh, const float* init,
                                       int n, float* y) {
    constexpr int A = kGemvAccumulators;
    float acc[A][16] = {};
    for (int j = 0; j < n && init; ++j) acc[0][j] = init[j];
    const float* z[2] = {x, h};
    const int K[2] = {kx, kh};
    for (int s = 0; s < 2; ++s) {
        for (int k = 0; k < K[s]; ++k, p += 16) {
            const float zk = z[s][k];
            float* a = acc[k < K[s] / A * A ? k % A : 0];
#pragma omp simd
            for (int j = 0; j < 16; ++j) a[j] += widen(p[j]) * zk;
        }
    }
    for (int w = A / 2; w > 0; w /= 2)
        for (int i = 0; i < w; ++i)
            for (int j = 0; j < 16; ++j) acc[i][j] += acc[i + w][j];
    for (int j = 0; j < n; ++j) y[j] = acc[0][j];
}

template <class W>
void dispatch(const W* p, const float* x, int kx, const float* h, int kh, const float* init, int n, float* y) {
#if defined(__x86_64__)
    if (avx512) return panel_gemv_avx512(p, x, kx, h, kh, init, n, y);
#endif
    portable_gemv(p, x, kx, h, kh, init, n, y);
}

// The exact integer sums of the 8-bit kernel; only their combination in double is rounded, and with the
// same fused operations as panel_gemv_int8_avx512.cpp, so both give the same bits.
RNNKIT_MULTIVERSION void portable_int8(const std::int8_t* p, Quantized x, int kx, Quantized h, int kh,
                                       const float* init, int n, float* y) {
    float scale[16];
    std::memcpy(scale, p, sizeof scale);
    p += kScaleRows * 16;
    double t[16] = {};
    const Quantized z[2] = {x, h};
    const int K[2] = {kx, kh};
    for (int s = 0; s < 2; ++s) {
        if (K[s] == 0) continue;
        std::int64_t sum[16] = {};
        for (int r = 0; r < (K[s] + 1) / 2; ++r, p += 32) {
            const std::int32_t z0 = z[s].q[2 * r], z1 = z[s].q[2 * r + 1];
#pragma omp simd
            for (int j = 0; j < 16; ++j) sum[j] += std::int32_t(p[2 * j]) * z0 + std::int32_t(p[2 * j + 1]) * z1;
        }
        for (int j = 0; j < 16; ++j) t[j] = std::fma(double(z[s].scale), double(sum[j]), t[j]);
    }
    for (int j = 0; j < n; ++j) y[j] = float(std::fma(double(scale[j]), t[j], init ? double(init[j]) : 0.0));
}

}  // namespace

void panel_gemv(const float* p, const float* x, int kx, const float* h, int kh, const float* init, int n, float* y) {
    dispatch(p, x, kx, h, kh, init, n, y);
}

void panel_gemv(const std::uint16_t* p, const float* x, int kx, const float* h, int kh, const float* init, int n,
                float* y) {
    dispatch(p, x, kx, h, kh, init, n, y);
}

void panel_gemv(const std::int8_t* p, Quantized x, int kx, Quantized h, int kh, const float* init, int n, float* y) {
#if defined(__x86_64__)
    if (avx512_int8) return panel_gemv_avx512(p, x, kx, h, kh, init, n, y, vnni);
#endif
    portable_int8(p, x, kx, h, kh, init, n, y);
}

const char* panel_gemv_kernel() {
#if defined(__x86_64__)
    if (avx512) return "avx512";
#endif
    return "portable";
}

const char* panel_gemv_int8_kernel() {
#if defined(__x86_64__)
    if (vnni) return "avx512-vnni";
    if (avx512_int8) return "avx512";
#endif
    return "portable";
}

RNNKIT_MULTIVERSION Quantized quantize(const float* z, int n, std::int16_t* q) {
    // The largest magnitude as the largest bit pattern without the sign: the order of the patterns of
    // non-negative floats is theirs, with infinity and then NaN above every finite one. An integer
    // maximum vectorises, a float one (NaN-aware) does not.
    std::uint32_t top = 0;
    for (int i = 0; i < n; ++i) {
        std::uint32_t bits;
        std::memcpy(&bits, z + i, sizeof bits);
        top = std::max(top, bits & 0x7fffffffu);
    }
    const bool bad = top >= 0x7f800000u;
    float largest;
    std::memcpy(&largest, &top, sizeof largest);
    if (bad || largest == 0.0f) {
        std::fill(q, q + n + n % 2, std::int16_t(0));
        return {q, bad ? NAN : 0.0f};
    }
    const float scale = largest / 32767.0f, inverse = 32767.0f / largest;
    // |z| * inverse <= 32767 (1 + 2^-23): rounds to at most 32767.
    for (int i = 0; i < n; ++i) q[i] = std::int16_t(std::nearbyint(z[i] * inverse));
    if (n % 2) q[n] = 0;
    return {q, scale};
}

RNNKIT_MULTIVERSION bool to_int8_panel(const float* in, int kx, int kh, std::int8_t* out) {
    const int k = kx + kh;
    float largest[16] = {}, scale[16], inverse[16];
    bool finite = true;
    for (int kk = 0; kk < k; ++kk)
        for (int j = 0; j < 16; ++j) {
            const float w = in[kk * 16 + j];
            finite = finite && std::isfinite(w);
            largest[j] = std::max(largest[j], std::fabs(w));
        }
    for (int j = 0; j < 16; ++j) {
        scale[j] = largest[j] / 127.0f;
        inverse[j] = finite && largest[j] > 0.0f ? 127.0f / largest[j] : 0.0f;  // zeros q where it is 0
    }
    std::memcpy(out, scale, sizeof scale);
    out += kScaleRows * 16;
    static const float zeros[16] = {};
    const int K[2] = {kx, kh};
    const float* rows[2] = {in, in + std::size_t(kx) * 16};
    for (int s = 0; s < 2; ++s)
        for (int r = 0; r < (K[s] + 1) / 2; ++r, out += 32) {
            const float* a = rows[s] + 2 * r * 16;
            const float* b = 2 * r + 1 < K[s] ? a + 16 : zeros;  // the padding row of an odd count is zero
            // |w| * inverse <= 127 (1 + 2^-23): rounds to at most 127.
            for (int j = 0; j < 16; ++j) {
                out[2 * j] = std::int8_t(std::nearbyint(a[j] * inverse[j]));
                out[2 * j + 1] = std::int8_t(std::nearbyint(b[j] * inverse[j]));
            }
        }
    return finite;
}

namespace {
// F. Giesen's float_to_half_fast3_rtne (round to nearest even), branch-free.
RNNKIT_MULTIVERSION bool portable_to_half(const float* in, std::size_t n, std::uint16_t* out) {
    std::uint32_t largest = 0;  // of the magnitudes in half (infinity 0x7c00, NaN above)
    for (std::size_t i = 0; i < n; ++i) {
        std::uint32_t x;
        std::memcpy(&x, in + i, sizeof x);
        const std::uint32_t sign = (x >> 16) & 0x8000u;
        x &= 0x7fffffffu;
        // |in| < 2^-14, a half subnormal: adding 0.5 leaves the rounded value in the low mantissa bits.
        float sub;
        std::memcpy(&sub, &x, sizeof sub);
        sub += 0.5f;
        std::uint32_t sub_bits;
        std::memcpy(&sub_bits, &sub, sizeof sub_bits);
        sub_bits -= 0x3f000000u;
        // Normal: rebias the exponent, round the 13 dropped bits to nearest even (a carry may reach
        // infinity, as it should).
        const std::uint32_t normal = (x + ((15u - 127u) << 23) + 0xfffu + ((x >> 13) & 1u)) >> 13;
        const std::uint32_t special = x > 0x7f800000u ? 0x7e00u : 0x7c00u;  // NaN, or infinity
        const std::uint32_t h = x >= 0x47800000u ? special : x < 0x38800000u ? sub_bits : normal;
        largest = largest > h ? largest : h;
        out[i] = std::uint16_t(h | sign);
    }
    return largest < 0x7c00u;
}
}  // namespace

// A model's weights are converted on every sequence call with half weights: F16C's vcvtps2ph converts
// 16 values an instruction where the portable code takes ~20 instructions for 16.
bool to_half(const float* in, std::size_t n, std::uint16_t* out) {
#if defined(__x86_64__)
    if (avx512) return to_half_avx512(in, n, out);
#endif
    return portable_to_half(in, n, out);
}

bool round_to_half(const float* in, std::size_t n, float* out) {
#if defined(__x86_64__)
    if (avx512) return round_to_half_avx512(in, n, out);
#endif
    constexpr std::size_t kBlock = 1024;  // a stack buffer of halves that stays in L1
    std::uint16_t half[kBlock];
    bool finite = true;
    for (std::size_t i = 0; i < n; i += kBlock) {
        const std::size_t m = std::min(kBlock, n - i);
        finite &= portable_to_half(in + i, m, half);
        for (std::size_t j = 0; j < m; ++j) out[i + j] = widen(half[j]);
    }
    return finite;
}

}  // namespace rnnkit
