// Matrix-vector products over weights packed in panels of 16 rows (pack_panels' layout: k rows of 16
// contiguous values), for the sampler. At batch 1 a step reads every weight once and does one
// multiply-add with it, so what matters is the bytes streamed: the weights may be stored as IEEE half
// (binary16), widened to float as they are loaded and summed in float, or as 8-bit integers with a scale
// per row of output (a panel column), multiplied with the vector quantised to 16 bits and summed exactly
// in integers (AVX512-VNNI's vpdpwssd does 32 such products an instruction, the float kernel 16).
#pragma once

#include <cstddef>
#include <cstdint>

namespace rnnkit {

// Partial sums a kernel keeps over k (rows k = i mod this go to sum i), added pairwise at the end
// (0+4, 1+5, ...; then 0+2, 1+3; then 0+1), the same order in every float kernel (the 8-bit kernel's
// sums are exact, in any order). Eight hide the latency of the multiply-adds behind the widening of the
// rows (bench/kernel_choices.md).
constexpr int kGemvAccumulators = 8;

// y[0..n) = init[0..n) (zeros if init is null) + x[0..kx) . p[0..kx) + h[0..kh) . p[kx..kx+kh),
// where p[k] is row k of the panel (16 values, of which the first n <= 16 are used). The panel's rows
// for x come first, then those for h, so one call reads a unit's input and recurrent weights together.
void panel_gemv(const float* p, const float* x, int kx, const float* h, int kh, const float* init, int n, float* y);
void panel_gemv(const std::uint16_t* p, const float* x, int kx, const float* h, int kh, const float* init, int n,
                float* y);
// A vector quantised to 16 bits for the 8-bit kernels: z[i] ~ q[i] * scale, |q[i]| <= 32767.
struct Quantized {
    const std::int16_t* q;  // an even number of values: a zero follows an odd-length vector
    float scale;
};

// q[0..n) = z[0..n) * (32767 / m) rounded to nearest even, m = max_i |z[i]|, scale = m / 32767, and
// q[n] = 0 if n is odd: each value is off by about 1/65534 of the largest, far below the weights'
// 8-bit error. A non-finite z makes scale NaN (and q zero), so the products are NaN as float ones would be.
Quantized quantize(const float* z, int n, std::int16_t* q);

// An 8-bit panel starts with kScaleRows rows that hold its 16 column scales s[j] as floats (64 bytes).
// Its weights follow in pairs of k, interleaved so that one 32-bit lane holds a unit's weights for k and
// k+1 (the layout of integer dot-product instructions): row pair r is the 32 bytes
// q[2r][0], q[2r+1][0], q[2r][1], q[2r+1][1], ..., the x rows and the h rows each padded to an even count
// with zeros (int8_rows). Weights times 16-bit quantised values are summed exactly in integers, then
// y[j] = init[j] + s[j] * (x.scale * Sx[j] + h.scale * Sh[j]) in double, the same in every kernel.
void panel_gemv(const std::int8_t* p, Quantized x, int kx, Quantized h, int kh, const float* init, int n, float* y);

constexpr int kScaleRows = 16 * sizeof(float) / 16;

// Rows of 16 bytes an 8-bit panel of kx + kh weight rows takes, its scales included.
inline int int8_rows(int kx, int kh) { return kScaleRows + (kx + 1) / 2 * 2 + (kh + 1) / 2 * 2; }

// The 8-bit panel (above) of the float panel in[0 .. (kx+kh)*16) (pack_panels' layout) into out.
// Column j's scale is s[j] = max_k |in[k][j]| / 127 and q = in * (127 / max_k |in[k][j]|) rounded to
// nearest even (zero for an all-zero column, and everywhere unless every in[i] is finite). Returns
// whether every in[i] is finite.
bool to_int8_panel(const float* in, int kx, int kh, std::int8_t* out);

// out[i] = in[i] as IEEE half, rounded to nearest even. Returns whether every out[i] is finite (false
// if some |in[i]| >= 65520, or is infinite or NaN).
bool to_half(const float* in, std::size_t n, std::uint16_t* out);

// out[i] = in[i] rounded to the nearest IEEE half and widened back to float (out may be in): the value a
// half weight has when a kernel reads it. Returns whether every out[i] is finite (as to_half).
bool round_to_half(const float* in, std::size_t n, float* out);

// The kernels panel_gemv runs on this CPU: for float and half panels "avx512" or "portable"; for 8-bit
// panels "avx512-vnni", "avx512" or "portable".
const char* panel_gemv_kernel();
const char* panel_gemv_int8_kernel();

}  // namespace rnnkit
