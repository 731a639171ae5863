// Gate nonlinearities, written so that the compiler vectorises the loops that call them.
//
// float uses a branch-free exp (Cephes' polynomial, about 1 ulp) because libm's expf is a call that
// stops vectorisation; the gates of a float network tolerate that error. double keeps libm: it is the
// precision the gradient checks run in.
#pragma once

#include <cmath>
#include <cstdint>
#include <cstring>

// Compiles a pointwise function for AVX-512, AVX2+FMA and the baseline, chosen at load time, so a
// portable build still runs the gate loops at full vector width.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RNNKIT_MULTIVERSION __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#else
#define RNNKIT_MULTIVERSION
#endif

// Inlined into each clone, so they vectorise at the clone's width.
#define RNNKIT_INLINE inline __attribute__((always_inline))

namespace rnnkit {

RNNKIT_INLINE float exp_approx(float x) {
    // Clamp so 2^n stays a normal float; the comparisons are ordered so that NaN passes through.
    float xc = x > 88.0f ? 88.0f : x;
    xc = xc < -87.0f ? -87.0f : xc;
    // n = round(x / ln 2) by the add-and-subtract trick, which needs no SSE4.1 rounding instruction.
    const float shifter = 12582912.0f;  // 1.5 * 2^23
    float n = (xc * 1.44269504088896341f + shifter) - shifter;
    float r = xc - n * 0.693359375f - n * -2.12194440e-4f;
    float r2 = r * r;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r2 + r + 1.0f;
    std::int32_t bits = (static_cast<std::int32_t>(n) + 127) << 23;
    float scale;
    __builtin_memcpy(&scale, &bits, sizeof scale);
    return x != x ? x : p * scale;
}

RNNKIT_INLINE double exp_approx(double x) { return std::exp(x); }

template <class T>
RNNKIT_INLINE T sigmoid(T x) { return T(1) / (T(1) + exp_approx(-x)); }

RNNKIT_INLINE float tanh_approx(float x) {
    // Near zero 1 - 2/(e^2x + 1) cancels, so small |x| takes Cephes' odd polynomial instead.
    float ax = x < 0.0f ? -x : x;
    float z = x * x;
    float small = ((((-5.70498872745e-3f * z + 2.06390887954e-2f) * z - 5.37397155531e-2f) * z +
                    1.33314422036e-1f) * z - 3.33332819422e-1f) * z * x + x;
    float big = 1.0f - 2.0f / (exp_approx(2.0f * ax) + 1.0f);
    big = x < 0.0f ? -big : big;
    return ax < 0.625f ? small : big;  // NaN fails the test and returns `big`, itself NaN
}

RNNKIT_INLINE double tanh_approx(double x) { return std::tanh(x); }

template <class T>
RNNKIT_INLINE T relu(T x) { return x < T(0) ? T(0) : x; }  // NaN is not < 0, so it propagates

// Sets flush-to-zero and denormals-are-zero for the calling thread while alive. Saturated sigmoid
// gates produce denormals, and each one costs a microcode assist of ~100 cycles.
class DenormalsFlushed {
public:
    DenormalsFlushed();
    ~DenormalsFlushed();
    DenormalsFlushed(const DenormalsFlushed&) = delete;
    DenormalsFlushed& operator=(const DenormalsFlushed&) = delete;

private:
    unsigned saved_;
};

}  // namespace rnnkit
