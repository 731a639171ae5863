// Sampling loop of sampling.h: embedding lookup -> a batch-1 step per layer -> linear -> (temperature
// softmax | top-k | argmax) -> draw, fed back. The draw is deterministic for a seed on every platform:
// u = (rng() >> 11) * 2^-53 is a uniform double in [0, 1) built from the top 53 bits of one
// std::mt19937_64 output (whose sequence the standard fixes), and the symbol is found by inverting the
// cumulative distribution in index order.
#include "sampling.h"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <random>
#include <stdexcept>

namespace rnnkit {

namespace {

// Each layer advances by rnnkit::step, the kernels' own single-step entry point (at batch 1 its
// products are GEMVs).
template <class T>
class Sampler {
public:
    explicit Sampler(const CharModel<T>& m)
        : m_(m), L_(int(m.w_ih.size())), h_(std::size_t(L_) * m.H), c_(std::size_t(L_) * m.H),
          one_hot_(m.embed ? 0 : m.V), logits_(m.V), order_(m.V) {}

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
        if (!in) {
            std::fill(one_hot_.begin(), one_hot_.end(), T(0));
            one_hot_[hot] = T(1);
            in = one_hot_.data();
        }
        T* h = h_.data() + std::size_t(l) * m_.H;
        T* c = m_.mode == Mode::Lstm ? c_.data() + std::size_t(l) * m_.H : nullptr;
        const SeqArgs<T> a{m_.mode, 1, 1, I, m_.H, in, h, c, m_.w_ih[l], m_.w_hh[l], m_.b_ih[l], m_.b_hh[l],
                           nullptr, false};
        step<T>(a, h, c);
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
    int L_;
    std::vector<T> h_, c_, one_hot_;
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
