// Sampling loop of sampling.h: embedding lookup -> a batch-1 step per layer -> linear -> (temperature
// softmax | top-k | argmax) -> draw, fed back. The draw is deterministic for a seed on every platform:
// u = (rng() >> 11) * 2^-53 is a uniform double in [0, 1) built from the top 53 bits of one
// std::mt19937_64 output (whose sequence the standard fixes), and the symbol is found by inverting the
// cumulative distribution in index order.
#include "sampling.h"

#include "activations.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <stdexcept>

namespace rnnkit {

namespace {

// Four dot products of x with consecutive rows of w (row stride ld), at the CPU's vector width.
template <class T>
RNNKIT_MULTIVERSION void dot4(int n, const T* w, std::size_t ld, const T* x, T* out) {
    T s0 = T(0), s1 = T(0), s2 = T(0), s3 = T(0);
#pragma omp simd reduction(+ : s0, s1, s2, s3)
    for (int j = 0; j < n; ++j) {
        s0 += w[j] * x[j], s1 += w[ld + j] * x[j], s2 += w[2 * ld + j] * x[j], s3 += w[3 * ld + j] * x[j];
    }
    out[0] = s0, out[1] = s1, out[2] = s2, out[3] = s3;
}

template <class T>
RNNKIT_MULTIVERSION T dot(int n, const T* w, const T* x) {
    T s = T(0);
#pragma omp simd reduction(+ : s)
    for (int j = 0; j < n; ++j) s += w[j] * x[j];
    return s;
}

// out[r] = (b ? b[r] : 0) + W[r, :] . x for r in [r0, r1): one GEMV slice, W row-major [rows, cols],
// shared among the threads of the enclosing parallel region in blocks of four rows.
template <class T>
void gemv_rows(int r0, int r1, int cols, const T* W, const T* x, const T* b, T* out) {
    const int blocks = (r1 - r0) / 4;
#pragma omp for schedule(static) nowait
    for (int k = 0; k < blocks; ++k) {
        const int r = r0 + 4 * k;
        dot4(cols, W + std::size_t(r) * cols, std::size_t(cols), x, out + r);
        for (int i = 0; i < 4; ++i) out[r + i] += b ? b[r + i] : T(0);
    }
#pragma omp single nowait
    for (int r = r0 + 4 * blocks; r < r1; ++r) out[r] = (b ? b[r] : T(0)) + dot(cols, W + std::size_t(r) * cols, x);
}

// One decoding step of one layer at batch 1. rnnkit::step serves any batch and packs W_hh for its
// GEMMs on every call; at batch 1 a step is a matrix-vector product that reads each weight once, so
// this path uses plain GEMVs (rows split across threads) and the kernels' own gate nonlinearities
// (activations.h). The test suite checks it against rnnkit::kernels (greedy samples follow the
// sequence forward).
template <class T>
class Sampler {
public:
    explicit Sampler(const CharModel<T>& m)
        : m_(m), L_(int(m.w_ih.size())), G_(num_gates(m.mode)), h_(std::size_t(L_) * m.H),
          c_(std::size_t(L_) * m.H), gi_(std::size_t(G_) * m.H), gh_(std::size_t(G_) * m.H), rh_(m.H),
          logits_(m.V), order_(m.V) {
        const double work = double(G_) * m.H * (m.H + std::max(m.E, m.H));
        threads_ = work < 65536.0 ? 1 : std::max(1, std::min(get_num_threads(), (G_ * m.H) / 64));
    }

    // Runs symbol v through every layer, updating the carried states.
    void feed(std::int32_t v) {
        for (int l = 0; l < L_; ++l) {
            const T* in = l == 0 ? (m_.embed ? m_.embed + std::size_t(v) * m_.E : nullptr)
                                 : h_.data() + std::size_t(l - 1) * m_.H;
            layer_step(l, in, l == 0 ? m_.E : m_.H, v);
        }
    }

private:
    // in == null means one-hot input with the 1 at `hot` (layer 0 without embedding).
    void layer_step(int l, const T* in, int I, int hot) {
        const int H = m_.H, GH = G_ * H;
        const bool cho = m_.mode == Mode::GruCho;
        T* h = h_.data() + std::size_t(l) * H;
        T *gi = gi_.data(), *gh = gh_.data();
        const T *w_ih = m_.w_ih[l], *b_ih = m_.b_ih[l], *w_hh = m_.w_hh[l], *b_hh = m_.b_hh[l];
#pragma omp parallel num_threads(threads_)
        {
            if (in) {
                gemv_rows(0, GH, I, w_ih, in, b_ih, gi);
            } else {
#pragma omp for schedule(static) nowait
                for (int r = 0; r < GH; ++r) gi[r] = (b_ih ? b_ih[r] : T(0)) + w_ih[std::size_t(r) * I + hot];
            }
            gemv_rows(0, cho ? 2 * H : GH, H, w_hh, h, b_hh, gh);  // Cho's n rows need r first
        }
        switch (m_.mode) {
            case Mode::RnnTanh:
                for (int j = 0; j < H; ++j) h[j] = tanh_approx(gi[j] + gh[j]);
                break;
            case Mode::RnnRelu:
                for (int j = 0; j < H; ++j) h[j] = relu(gi[j] + gh[j]);
                break;
            case Mode::Lstm: {
                T* c = c_.data() + std::size_t(l) * H;
                for (int j = 0; j < H; ++j) {
                    const T i = sigmoid(gi[j] + gh[j]), f = sigmoid(gi[H + j] + gh[H + j]),
                            g = tanh_approx(gi[2 * H + j] + gh[2 * H + j]),
                            o = sigmoid(gi[3 * H + j] + gh[3 * H + j]);
                    c[j] = f * c[j] + i * g;
                    h[j] = o * tanh_approx(c[j]);
                }
                break;
            }
            case Mode::Gru:
                for (int j = 0; j < H; ++j) {
                    const T r = sigmoid(gi[j] + gh[j]), z = sigmoid(gi[H + j] + gh[H + j]);
                    const T n = tanh_approx(gi[2 * H + j] + r * gh[2 * H + j]);
                    h[j] = (T(1) - z) * n + z * h[j];
                }
                break;
            case Mode::GruCho: {
                for (int j = 0; j < H; ++j) rh_[j] = sigmoid(gi[j] + gh[j]) * h[j];
#pragma omp parallel num_threads(threads_)
                gemv_rows(2 * H, 3 * H, H, w_hh, rh_.data(), b_hh, gh);
                for (int j = 0; j < H; ++j) {
                    const T z = sigmoid(gi[H + j] + gh[H + j]), n = tanh_approx(gi[2 * H + j] + gh[2 * H + j]);
                    h[j] = (T(1) - z) * n + z * h[j];
                }
                break;
            }
        }
    }

public:
    // Draws the next symbol from the top layer's state.
    std::int32_t draw(const SampleOptions& opt, std::mt19937_64& rng) {
        const T* h = h_.data() + std::size_t(L_ - 1) * m_.H;
        for (int v = 0; v < m_.V; ++v) {
            const T* w = m_.w_out + std::size_t(v) * m_.H;
            double s = m_.b_out ? double(m_.b_out[v]) : 0.0;
            for (int j = 0; j < m_.H; ++j) s += double(w[j]) * double(h[j]);
            logits_[v] = s;
        }
        // Candidates in descending logit order, ties by index; the excluded symbol is never one.
        order_.resize(m_.V);
        std::iota(order_.begin(), order_.end(), 0);
        if (opt.exclude >= 0) order_.erase(order_.begin() + opt.exclude);
        const std::size_t keep =
            opt.top_k > 0 ? std::min<std::size_t>(std::size_t(opt.top_k), order_.size()) : order_.size();
        auto before = [&](int a, int b) { return logits_[a] > logits_[b] || (logits_[a] == logits_[b] && a < b); };
        if (opt.temperature == 0.0 || keep == 1) {
            return *std::min_element(order_.begin(), order_.end(), before);
        }
        if (keep < order_.size()) {
            std::partial_sort(order_.begin(), order_.begin() + keep, order_.end(), before);
            order_.resize(keep);
            std::sort(order_.begin(), order_.end());  // back to index order for the CDF
        }
        double top = -INFINITY;
        for (int v : order_) top = std::max(top, logits_[v]);
        double total = 0.0;
        probs_.resize(order_.size());
        for (std::size_t i = 0; i < order_.size(); ++i) {
            total += std::exp((logits_[order_[i]] - top) / opt.temperature);
            probs_[i] = total;  // cumulative
        }
        const double u = double(rng() >> 11) * 0x1.0p-53 * total;
        for (std::size_t i = 0; i < order_.size(); ++i)
            if (u < probs_[i]) return order_[i];
        return order_.back();  // u rounded up to total
    }

private:
    const CharModel<T>& m_;
    int L_, G_, threads_;
    std::vector<T> h_, c_, gi_, gh_, rh_;
    std::vector<double> logits_, probs_;
    std::vector<int> order_;
};

template <class T>
void check(const CharModel<T>& m, const std::int32_t* prime, int n_prime, int length, const SampleOptions& opt) {
    const std::size_t L = m.w_ih.size();
    if (L < 1 || m.w_hh.size() != L || m.b_ih.size() != L || m.b_hh.size() != L)
        throw std::invalid_argument("the model needs at least one layer and one weight of each kind per layer");
    if (m.V < 1 || m.E < 1 || m.H < 1) throw std::invalid_argument("V, E and H must be at least 1");
    if (!m.embed && m.E != m.V) throw std::invalid_argument("one-hot input needs E == V");
    if (n_prime < 1) throw std::invalid_argument("sampling needs at least one priming symbol");
    if (length < 0) throw std::invalid_argument("length must be >= 0");
    if (!(opt.temperature >= 0.0) || !std::isfinite(opt.temperature))
        throw std::invalid_argument("temperature must be a finite number >= 0");
    if (opt.top_k < 0) throw std::invalid_argument("top_k must be >= 0");
    if (opt.exclude >= m.V || (opt.exclude >= 0 && m.V == 1))
        throw std::invalid_argument("exclude must name a symbol and leave at least one other");
    for (int i = 0; i < n_prime; ++i)
        if (prime[i] < 0 || prime[i] >= m.V) throw std::invalid_argument("priming symbol outside 0..V-1");
}

}  // namespace

template <class T>
void sample(const CharModel<T>& m, const std::int32_t* prime, int n_prime, int length, const SampleOptions& opt,
            std::int32_t* out) {
    check(m, prime, n_prime, length, opt);
    Sampler<T> s(m);
    std::mt19937_64 rng(opt.seed);
    for (int i = 0; i < n_prime; ++i) s.feed(prime[i]);
    for (int i = 0; i < length; ++i) {
        out[i] = s.draw(opt, rng);
        if (i + 1 < length) s.feed(out[i]);
    }
}

template void sample<float>(const CharModel<float>&, const std::int32_t*, int, int, const SampleOptions&,
                            std::int32_t*);
template void sample<double>(const CharModel<double>&, const std::int32_t*, int, int, const SampleOptions&,
                             std::int32_t*);

}  // namespace rnnkit
