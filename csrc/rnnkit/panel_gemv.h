// Matrix-vector products over weights packed in panels of 16 rows (pack_panels' layout: k rows of 16
// contiguous values), for the sampler. At batch 1 a step reads every weight once and does one
// multiply-add with it, so what matters is the bytes streamed: the weights may be stored as IEEE half
// (binary16), widened to float as they are loaded; the sums are float either way.
#pragma once

#include <cstddef>
#include <cstdint>

namespace rnnkit {

// y[0..n) = init[0..n) (zeros if init is null) + x[0..kx) . p[0..kx) + h[0..kh) . p[kx..kx+kh),
// where p[k] is row k of the panel (16 values, of which the first n <= 16 are used). The panel's rows
// for x come first, then those for h, so one call reads a unit's input and recurrent weights together.
void panel_gemv(const float* p, const float* x, int kx, const float* h, int kh, const float* init, int n, float* y);
void panel_gemv(const std::uint16_t* p, const float* x, int kx, const float* h, int kh, const float* init, int n,
                float* y);

// out[i] = in[i] as IEEE half, rounded to nearest even. Returns whether every out[i] is finite (false
// if some |in[i]| >= 65520, or is infinite or NaN).
bool to_half(const float* in, std::size_t n, std::uint16_t* out);

}  // namespace rnnkit
