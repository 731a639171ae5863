// rnnkit sampling: generate a sequence of symbols from a character-level language model, entirely in
// C++ (no Python between steps).
//
// The model: embedding (or one-hot) -> L recurrent layers (the cells of rnnkit.h) -> linear -> softmax.
//   V = vocabulary size, E = input size of layer 0 (the embedding width, or V for one-hot input),
//   H = hidden size, L = layers.
//   embed        [V, E]      row v is the input for symbol v; null means one-hot input (E must be V)
//   w_ih[l], w_hh[l], b_ih[l], b_hh[l]  layer l's weights as rnnkit.h shapes them for the cell (layer
//                has input E, the layers above H); biases all null for a model without bias
//   w_out        [V, H]      output projection; b_out [V] or null
#pragma once

#include <cstdint>
#include <vector>

#include "rnnkit/rnnkit.h"

namespace rnnkit {

template <class T>
struct CharModel {
    CellId cell;
    int V, E, H;
    const T* embed;
    std::vector<const T*> w_ih, w_hh, b_ih, b_hh;  // one entry per layer
    const T* w_out;
    const T* b_out;
};

// How a float model's weights are stored while sampling. Every character reads each weight once, so
// the time per character is the time to stream them from cache: half the bytes, nearly half the time.
//   Float32  the model's own values: the states of the kernels (to float rounding).
//   Float16  the weights read per character rounded to IEEE half, nearest even (relative error
//            <= 2^-11 each); sums and states stay float. (Layer 0's input weights, for one-hot input or
//            up to 512 symbols, become a per-symbol table of input products, kept in float.) Logits
//            move by ~1e-3 relative, so a seeded sample may differ from the Float32 one. Fast where
//            the vector loads widen halves (AVX-512), correct anywhere.
//   Int8     the same weights as 8-bit integers q with, per output unit of each layer (and per symbol
//            of the output layer), a scale s = (the unit's largest weight) / 127: w ~ q*s, |q| <= 127,
//            the error at most s/2. Each vector they multiply (embedding row, states) is quantised to
//            16 bits per step (z ~ p*a, a = max|z| / 32767) and the products summed exactly in integers
//            (AVX-512: vpdpwssd with VNNI, else vpmaddwd), then scaled in double. A quarter of the
//            bytes and a third of the instructions of Float32: a 2x512 LSTM's 3.3 MB nearly fit in the
//            L2 caches of two cores, where Float32's 12.6 MB stream from L3. Float32 storage of the
//            weights q*s up to the 16-bit rounding of the states (1/65534 of the largest); logits move
//            by ~1e-2 relative.
// Double models always sample in double (Float16 and Int8 are refused for them).
enum class WeightStorage { Float32, Float16, Int8 };

struct SampleOptions {
    double temperature = 1.0;  // logits are divided by it; 0 means argmax (greedy)
    int top_k = 0;             // keep only the k most likely symbols; 0 keeps all
    std::uint64_t seed = 0;    // std::mt19937_64 seed; the draw is portable (see sampling.cpp)
    int exclude = -1;          // a symbol never produced (e.g. the unknown symbol), or -1
    WeightStorage weights = WeightStorage::Float32;
};

// Feeds prime[0..n_prime) (n_prime >= 1) through the model from zero states, then draws `length`
// symbols, each fed back as the next input, into out[0..length). Throws std::invalid_argument on bad
// arguments (symbols outside 0..V-1, negative temperature or top_k, n_prime < 1, Float16 storage of a
// double model, a weight too large for half). Runs on rnnkit's threads (get_num_threads()).
template <class T>
void sample(const CharModel<T>& m, const std::int32_t* prime, int n_prime, int length,
            const SampleOptions& opt, std::int32_t* out);

// The negative log-likelihood in nats of ids[1..n), each symbol predicted from those before it, fed
// by the loop that samples (one stream, batch 1) with the given weight storage: the model a sample
// with that storage is drawn from, at temperature 1. The states start at zero, or with `state` (h of
// every layer, L*H values, then c of every layer for LSTM), which is then replaced by the states after
// ids[n-2], the last symbol fed: scoring ids[0..k] and then ids[k..n) gives the sum over ids[0..n).
// Throws std::invalid_argument on symbols outside 0..V-1, n < 0 or a storage the model does not take
// (as sample does).
template <class T>
double score(const CharModel<T>& m, const std::int32_t* ids, int n, WeightStorage weights, T* state = nullptr);

}  // namespace rnnkit
