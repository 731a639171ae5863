// Matrix-vector products over weights packed in panels of 16 rows (pack_panels' layout: k rows of 16
// contiguous values), for the sampler. At batch 1 a step reads every weight once and does one
// multiply-add with it, so what matters is the bytes streamed: the weights may be stored as IEEE half
// (binary16) or as 8-bit integers with a scale per row of output (a panel column), widened to float as
// they are loaded; the sums are float either way.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rnnkit {

// Partial sums a kernel keeps over k (rows k = i mod this go to sum i), added pairwise at the end
// (0+4, 1+5, ...; then 0+2, 1+3; then 0+1), the same order in every kernel. Eight hide the latency of
// the multiply-adds behind the widening of 8-bit and half rows (2x256 LSTM, int8: 36 -> 26 us a character).
constexpr int kGemvAccumulators = 8;

// y[0..n) = init[0..n) (zeros if init is null) + x[0..kx) . p[0..kx) + h[0..kh) . p[kx..kx+kh),
// where p[k] is row k of the panel (16 values, of which the first n <= 16 are used). The panel's rows
// for x come first, then those for h, so one call reads a unit's input and recurrent weights together.
void panel_gemv(const float* p, const float* x, int kx, const float* h, int kh, const float* init, int n, float* y);
void panel_gemv(const std::uint16_t* p, const float* x, int kx, const float* h, int kh, const float* init, int n,
                float* y);
// An 8-bit panel starts with kScaleRows rows that hold its 16 column scales as floats (64 bytes); its k
// rows follow. y[j] = scale[j] * (init[j] / scale[j] + sum_k q[k][j] z[k]): the scales are powers of
// two, so this is exactly float storage of the weights q * scale, summed in the same order.
void panel_gemv(const std::int8_t* p, const float* x, int kx, const float* h, int kh, const float* init, int n,
                float* y);

constexpr int kScaleRows = 16 * sizeof(float) / 16;

// The 8-bit panel of the float panel in[0 .. k*16), header included, into out. Column j's scale is the
// least power of two 2^e with 127 * 2^e >= max_k |in[k][j]| (2^-100 at least: smaller weights become 0),
// and q = in / 2^e rounded to nearest even. Returns whether every in[i] is finite.
bool to_int8_panel(const float* in, int k, std::int8_t* out);

// out[i] = in[i] as IEEE half, rounded to nearest even. Returns whether every out[i] is finite (false
// if some |in[i]| >= 65520, or is infinite or NaN).
bool to_half(const float* in, std::size_t n, std::uint16_t* out);

}  // namespace rnnkit
