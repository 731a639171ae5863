// What the sampling engines (sampling.cpp) do with the logits of each step: Sampling draws the next
// symbol, Scoring adds up the likelihood of a given one. The draw is deterministic for a seed on every
// platform: u = (rng() >> 11) * 2^-53 is a uniform double in [0, 1) built from the top 53 bits of one
// std::mt19937_64 output (whose sequence the standard fixes), and the symbol is found by inverting the
// cumulative distribution in index order.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <random>
#include <vector>

#include "rnnkit/ops/sampling.h"

namespace rnnkit {
namespace sampling_policy {

// The draw of the next symbol from its logits.
class Draw {
public:
    Draw(const SampleOptions& opt, int V) : logits(V), opt_(opt), rng_(opt.seed) {}

    template <class L>
    std::int32_t operator()(const L* from) {
        std::copy(from, from + logits.size(), logits.begin());
        return draw();
    }

private:
    std::vector<double> logits;

    std::int32_t draw() {
        const int V = int(logits.size());
        // Candidates in descending logit order, ties by index; the excluded symbol is never one.
        order_.resize(V);
        std::iota(order_.begin(), order_.end(), 0);
        if (opt_.exclude >= 0) order_.erase(order_.begin() + opt_.exclude);
        const std::size_t keep =
            opt_.top_k > 0 ? std::min<std::size_t>(std::size_t(opt_.top_k), order_.size()) : order_.size();
        auto before = [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
        if (opt_.temperature == 0.0 || keep == 1) {
            return *std::min_element(order_.begin(), order_.end(), before);
        }
        if (keep < order_.size()) {
            std::partial_sort(order_.begin(), order_.begin() + keep, order_.end(), before);
            order_.resize(keep);
            std::sort(order_.begin(), order_.end());  // back to index order for the CDF
        }
        double top = -INFINITY;
        for (int v : order_) top = std::max(top, logits[v]);
        double total = 0.0;
        probs_.resize(order_.size());
        for (std::size_t i = 0; i < order_.size(); ++i) {
            total += std::exp((logits[order_[i]] - top) / opt_.temperature);
            probs_[i] = total;  // cumulative
        }
        const double u = double(rng_() >> 11) * 0x1.0p-53 * total;
        for (std::size_t i = 0; i < order_.size(); ++i)
            if (u < probs_[i]) return order_[i];
        return order_.back();  // u rounded up to total
    }

    SampleOptions opt_;
    std::mt19937_64 rng_;
    std::vector<double> probs_;
    std::vector<int> order_;
};

// What an engine feeds and what it does with the logits. Both engines run: v = first(); for t in
// [0, feeds()): feed v; v = given(t) if that is >= 0, else next(thread, t, the logits after feeding).
//
// Sampling: the priming symbols, then symbols drawn from the logits, written to out. Every thread draws
// the same symbol with its own copy of the generator, so no barrier waits for the draw.
class Sampling {
public:
    Sampling(const SampleOptions& opt, int V, const std::int32_t* prime, int n_prime, int length, std::int32_t* out)
        : opt_(opt), V_(V), prime_(prime), n_prime_(n_prime), length_(length), out_(out) {}

    void set_threads(int threads) { draws_.assign(threads, Draw(opt_, V_)); }
    int feeds() const { return n_prime_ + length_ - 1; }
    std::int32_t first() const { return prime_[0]; }
    std::int32_t given(int t) const { return t < n_prime_ - 1 ? prime_[t + 1] : -1; }
    template <class L>
    std::int32_t next(int thread, int t, const L* logits) {
        const std::int32_t v = draws_[thread](logits);
        if (thread == 0) out_[t - n_prime_ + 1] = v;
        return v;
    }

private:
    SampleOptions opt_;
    int V_;
    const std::int32_t* prime_;
    int n_prime_, length_;
    std::int32_t* out_;
    std::vector<Draw> draws_;
};

// Scoring: the symbols ids[0..n) fed in turn; thread 0 adds -log softmax(logits)[ids[t+1]] in double.
class Scoring {
public:
    Scoring(int V, const std::int32_t* ids, int n) : V_(V), ids_(ids), n_(n) {}

    double nll = 0.0;

    void set_threads(int) {}
    int feeds() const { return n_ - 1; }
    std::int32_t first() const { return ids_[0]; }
    std::int32_t given(int) const { return -1; }
    template <class L>
    std::int32_t next(int thread, int t, const L* logits) {
        if (thread == 0) {
            const double top = *std::max_element(logits, logits + V_);
            double total = 0.0;
            for (int v = 0; v < V_; ++v) total += std::exp(double(logits[v]) - top);
            nll += std::log(total) + top - double(logits[ids_[t + 1]]);
        }
        return ids_[t + 1];
    }

private:
    int V_;
    const std::int32_t* ids_;
    int n_;
};

}  // namespace sampling_policy
}  // namespace rnnkit
