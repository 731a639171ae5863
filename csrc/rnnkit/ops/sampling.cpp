// Sampling loop of sampling.h: embedding lookup -> a batch-1 step per layer -> linear -> (temperature
// softmax | top-k | argmax) -> draw, fed back; the same loops score a given text (sampling.h's score).
// What happens to the logits is a policy (sampling_policy.h).
//
// Float models run the prepared engine below; double models step each layer with rnnkit::step.
#include "rnnkit/ops/sampling.h"

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <type_traits>

#include "rnnkit/cells/registry.h"
#include "rnnkit/loop/sequence.h"
#include "rnnkit/gemm/panel_gemv.h"
#include "rnnkit/ops/sampling_policy.h"

namespace rnnkit {

namespace {

using sampling_policy::Sampling;
using sampling_policy::Scoring;

// ------------------------------------------------------------------ double models: rnnkit::step

template <class T>
class StepSampler {
public:
    explicit StepSampler(const CharModel<T>& m)
        : m_(m), L_(int(m.w_ih.size())), h_(std::size_t(L_) * m.H), c_(std::size_t(L_) * m.H),
          one_hot_(m.embed ? 0 : m.V), states_(cell_info(m.cell).states) {}

    // Runs symbol v through every layer, updating the carried states.
    void feed(std::int32_t v) {
        for (int l = 0; l < L_; ++l) {
            const T* in = l == 0 ? (m_.embed ? m_.embed + std::size_t(v) * m_.E : nullptr)
                                 : h_.data() + std::size_t(l - 1) * m_.H;
            layer_step(l, in, l == 0 ? m_.E : m_.H, v);
        }
    }

    // The carried states from / to `state` (sampling.h's score): h of every layer, then c (LSTM).
    void load(const T* state) {
        std::copy(state, state + h_.size(), h_.begin());
        if (states_ == 2) std::copy(state + h_.size(), state + 2 * h_.size(), c_.begin());
    }
    void store(T* state) const {
        std::copy(h_.begin(), h_.end(), state);
        if (states_ == 2) std::copy(c_.begin(), c_.end(), state + h_.size());
    }

    // The top layer's state through the output layer, summed in double.
    void logits(std::vector<double>& out) const {
        const T* h = h_.data() + std::size_t(L_ - 1) * m_.H;
        for (int v = 0; v < m_.V; ++v) {
            const T* w = m_.w_out + std::size_t(v) * m_.H;
            double s = m_.b_out ? double(m_.b_out[v]) : 0.0;
            for (int j = 0; j < m_.H; ++j) s += double(w[j]) * double(h[j]);
            out[v] = s;
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
        T* c = states_ == 2 ? c_.data() + std::size_t(l) * m_.H : nullptr;
        const SeqArgs<T> a{m_.cell, 1, 1, I, m_.H, in, h, c, m_.w_ih[l], m_.w_hh[l], m_.b_ih[l], m_.b_hh[l],
                           nullptr, false};
        step<T>(a, h, c);
    }

    const CharModel<T>& m_;
    int L_;
    std::vector<T> h_, c_, one_hot_;
    int states_;
};

// state: null (zero states), or the states to start from, replaced by those after the last symbol fed.
template <class T, class Policy>
void run_by_steps(const CharModel<T>& m, Policy& policy, T* state) {
    StepSampler<T> s(m);
    if (state) s.load(state);
    std::vector<double> logits(m.V);
    policy.set_threads(1);
    std::int32_t v = policy.first();
    for (int t = 0; t < policy.feeds(); ++t) {
        s.feed(v);
        v = policy.given(t);
        if (v >= 0) continue;
        s.logits(logits);
        v = policy.next(0, t, logits.data());
    }
    if (state) s.store(state);
}

// ------------------------------------------------------------------ float models: the prepared engine
//
// A character reads every weight once (a 2x512 LSTM: 12.6 MB of float, beyond the L2 caches), so it
// costs the time to stream the weights from L3, plus synchronisation. The engine therefore packs the
// weights once per call in the order the loop reads them, replaces layer 0's input product with a row of
// a per-symbol table (so W_ih0 is not read per character), and runs the whole loop in one parallel region.

// Beyond this many symbols the table (V x G*H floats) costs more memory and set-up than it saves, and
// layer 0 reads W_ih0 like the layers above.
constexpr int kMaxTableRows = 512;

// Where a cell's forward puts a weight product in its record (R columns of H values per step), read from
// the cell's constants: the input product of W_ih's block g goes to column g; a recurrent product to its
// column, multiplying h or another record column (r*h, tanh(h): known only after an earlier phase).
struct Column {
    int rec;    // record column
    int ih;     // row block of W_ih multiplying the input, or -1
    int hh;     // row block of W_hh, or -1
    int src;    // what W_hh multiplies: kPrevState, or that record column
    int phase;  // the cell phase before whose pointwise work the column's products run
};

template <class Cell>
std::vector<Column> columns_of() {
    std::vector<Column> cols;
    for (int c = 0; c < Cell::R; ++c) {
        Column col{c, c < Cell::gates_ih ? c : -1, -1, kPrevState, 0};
        for (const Product& p : Cell::products)
            if (c >= p.col && c < p.col + p.rows_hi - p.rows_lo)
                col.hh = p.rows_lo + c - p.col, col.src = p.src, col.phase = p.phase;
        if (col.ih >= 0 || col.hh >= 0) cols.push_back(col);
    }
    return cols;
}

// How each storage keeps a panel of kx + kh float rows (pack_panels' layout), and the rows of 16 stored
// values that takes: float and half row by row, 8-bit with scales and in row pairs (panel_gemv.h).
inline bool store_panel(const float* in, int kx, int kh, float* out) {
    std::memcpy(out, in, std::size_t(kx + kh) * kPanel * sizeof(float));
    return true;
}
inline bool store_panel(const float* in, int kx, int kh, std::uint16_t* out) {
    return to_half(in, std::size_t(kx + kh) * kPanel, out);
}
inline bool store_panel(const float* in, int kx, int kh, std::int8_t* out) { return to_int8_panel(in, kx, kh, out); }

template <class W>
int stored_rows(int kx, int kh) { return std::is_same_v<W, std::int8_t> ? int8_rows(kx, kh) : kx + kh; }

// What a storage's kernels multiply the weights with: the float vector itself, or for 8-bit panels the
// vector quantised to 16 bits (into q, room for n + 1 values), once per vector and step.
inline const float* operand(float, const float* z, int, std::int16_t*) { return z; }
inline const float* operand(std::uint16_t, const float* z, int, std::int16_t*) { return z; }
inline Quantized operand(std::int8_t, const float* z, int n, std::int16_t* q) {
    return z ? quantize(z, n, q) : Quantized{nullptr, 0.0f};
}

// The prepared model of one call: the weights in panels of the storage W, in the order the loop reads
// them (for each layer, record column and block of 16 units, one panel holding that block's W_ih rows and
// then its W_hh rows, so one pass makes x W_ih^T + h W_hh^T; then the output layer, by blocks of 16
// symbols), layer 0's per-symbol input table, the biases, and the states.
template <class Cell, class W>
struct Prepared {
    const CharModel<float>& m;
    int V, E, H, L;
    std::vector<Column> cols;
    bool table;  // layer 0's input product is a row of input_table (embed W_ih0^T, or W_ih0^T for one-hot)
    std::vector<std::size_t> base;  // first panel of (layer, column), then of the output layer
    int out_rows;
    std::unique_ptr<W[]> storage;
    W* panels;
    std::vector<float> input_table, bias, h, c, rec, logits;
    std::vector<SeqArgs<float>> args;
    TeamBarrier barrier;  // between layers, phases and the logits of a character

    explicit Prepared(const CharModel<float>& model)
        : m(model), V(model.V), E(model.E), H(model.H), L(int(model.w_ih.size())), cols(columns_of<Cell>()),
          table(!model.embed || model.V <= kMaxTableRows) {
        std::size_t total = 0;
        for (int l = 0; l < L; ++l)
            for (const Column& col : cols) base.push_back(total), total += std::size_t(panels_of(H)) * stored(l, col) * kPanel;
        base.push_back(total);
        out_rows = stored_rows<W>(0, H);
        total += std::size_t(panels_of(V)) * out_rows * kPanel;
        // Uninitialised (the threads write it, each its own part), and 64-byte aligned so that no panel row
        // straddles two cache lines.
        storage.reset(new W[total + 64 / sizeof(W)]);
        panels = reinterpret_cast<W*>((reinterpret_cast<std::uintptr_t>(storage.get()) + 63) & ~std::uintptr_t(63));
        input_table.resize(table ? std::size_t(V) * Cell::gates_ih * H : 0);
        bias.resize(std::size_t(L) * Cell::R * H);
        h.resize(std::size_t(L) * 2 * H);
        c.resize(Cell::states == 2 ? h.size() : 0);
        rec.resize(std::size_t(L) * Cell::R * H);
        logits.resize(V);
        for (int l = 0; l < L; ++l) {
            SeqArgs<float> a{m.cell, 1, 1, l == 0 ? E : H, H, nullptr, nullptr, nullptr, m.w_ih[l], m.w_hh[l],
                             m.b_ih[l], m.b_hh[l], nullptr, false};
            args.push_back(a);
            fold_biases<Cell>(m.b_ih[l], m.b_hh[l], H, bias.data() + std::size_t(l) * Cell::R * H);
        }
    }

    // Panel rows of (layer, column): its input rows (none where layer 0 reads the table) and H recurrent rows.
    int rows_x(int l, const Column& col) const { return col.ih < 0 || (l == 0 && table) ? 0 : l == 0 ? E : H; }
    int rows_h(const Column& col) const { return col.hh < 0 ? 0 : H; }
    int stored(int l, const Column& col) const { return stored_rows<W>(rows_x(l, col), rows_h(col)); }
    // The panel of units [j, j + 16) in the block starting at base[b], whose panels take `rows` stored rows.
    W* panel(std::size_t b, int j, int rows) const { return panels + base[b] + std::size_t(j) * rows; }
    std::size_t output_block() const { return base.size() - 1; }
};

// Each thread packs the panels it will read (its units of every layer, its symbols of the output layer)
// and its units' columns of the input table; returns false if a weight does not fit the storage.
template <class Cell, class W>
bool pack_thread(Prepared<Cell, W>& pm, Units u, Units uv, float* tmp) {
    const CharModel<float>& m = pm.m;
    const int H = pm.H, n_cols = int(pm.cols.size());
    bool fits = true;
    for (int l = 0; l < pm.L; ++l)
        for (int ci = 0; ci < n_cols; ++ci) {
            const Column& col = pm.cols[ci];
            const int kx = pm.rows_x(l, col), kh = pm.rows_h(col), I = l == 0 ? pm.E : H;
            for (int j = u.lo; j < u.hi; j += kPanel) {
                const int n = std::min(kPanel, u.hi - j);
                if (kx) pack_panels<float>(n, kx, m.w_ih[l] + (std::size_t(col.ih) * H + j) * I, I, 1, tmp);
                if (kh) pack_panels<float>(n, H, m.w_hh[l] + (std::size_t(col.hh) * H + j) * H, H, 1, tmp + kx * kPanel);
                fits &= store_panel(tmp, kx, kh, pm.panel(l * n_cols + ci, j, pm.stored(l, col)));
            }
        }
    for (int j = uv.lo; j < uv.hi; j += kPanel) {
        pack_panels<float>(std::min(kPanel, uv.hi - j), H, m.w_out + std::size_t(j) * H, H, 1, tmp);
        fits &= store_panel(tmp, 0, H, pm.panel(pm.output_block(), j, pm.out_rows));
    }
    constexpr int G = Cell::gates_ih;
    if (pm.table && m.embed) {
        gemm_gate_rows<float>(pm.V, pm.E, m.embed, pm.E, m.w_ih[0], H, 0, G, u, 0.0f, pm.input_table.data() + u.lo, G * H, H);
    } else if (pm.table) {
        for (int v = 0; v < pm.V; ++v)
            for (int g = 0; g < G; ++g)
                for (int j = u.lo; j < u.hi; ++j)
                    pm.input_table[(std::size_t(v) * G + g) * H + j] = m.w_ih[0][(std::size_t(g) * H + j) * pm.V + v];
    }
    return fits;
}

// One step of layer l for this thread's units: each cell phase's products (input and recurrent rows of a
// column in one pass over its panels), then the cell's pointwise work; a barrier between phases.
template <class Cell, class W>
void layer_step(Prepared<Cell, W>& pm, int l, std::int32_t v, int in, Units u, std::int16_t* qx, std::int16_t* qh) {
    const int H = pm.H, n_cols = int(pm.cols.size()), out_slot = in ^ 1;
    float* hl = pm.h.data() + std::size_t(l) * 2 * H;
    float* cl = Cell::states == 2 ? pm.c.data() + std::size_t(l) * 2 * H : nullptr;
    float* rl = pm.rec.data() + std::size_t(l) * Cell::R * H;
    const float* embed_row = pm.m.embed ? pm.m.embed + std::size_t(v) * pm.E : nullptr;
    const float* x = l > 0 ? pm.h.data() + (std::size_t(l - 1) * 2 + out_slot) * H : embed_row;
    const float* row = pm.table && l == 0 ? pm.input_table.data() + std::size_t(v) * Cell::gates_ih * H : nullptr;
    Step<float> st;
    st.a = &pm.args[l], st.ldr = Cell::R * H, st.gs = H, st.rec = rl;
    st.hprev = hl + in * H, st.hout = hl + out_slot * H;
    if (cl) st.cprev = cl + in * H, st.cout = cl + out_slot * H;
    st.x = x, st.bias = pm.bias.data() + std::size_t(l) * Cell::R * H;
    const auto xin = operand(W{}, row ? nullptr : x, l == 0 ? pm.E : H, qx);
    for (int phase = 0; phase < Cell::phases; ++phase) {
        if (phase) pm.barrier.wait();
        const float* quantised_src = nullptr;
        auto hin = operand(W{}, nullptr, H, qh);
        for (int ci = 0; ci < n_cols; ++ci) {
            const Column& col = pm.cols[ci];
            if (col.phase != phase) continue;
            const int kx = pm.rows_x(l, col), kh = pm.rows_h(col);
            const float* src = col.src == kPrevState ? st.hprev : rl + col.src * H;
            if (kh && src != quantised_src) hin = operand(W{}, src, H, qh), quantised_src = src;
            const float* init = row && col.ih >= 0 ? row + col.ih * H : nullptr;
            for (int j = u.lo; j < u.hi; j += kPanel)
                panel_gemv(pm.panel(l * n_cols + ci, j, pm.stored(l, col)), xin, kx, hin, kh, init ? init + j : nullptr,
                           std::min(kPanel, u.hi - j), rl + col.rec * H + j);
        }
        Cell::forward(phase, st, u);
    }
}

// The logits of the top layer's state for this thread's symbols.
template <class Cell, class W>
void logits_step(Prepared<Cell, W>& pm, int out_slot, Units uv, std::int16_t* qx, std::int16_t* qh) {
    const int H = pm.H;
    const auto top = operand(W{}, pm.h.data() + (std::size_t(pm.L - 1) * 2 + out_slot) * H, H, qh);
    for (int j = uv.lo; j < uv.hi; j += kPanel)
        panel_gemv(pm.panel(pm.output_block(), j, pm.out_rows), operand(W{}, nullptr, 0, qx), 0, top, H,
                   pm.m.b_out ? pm.m.b_out + j : nullptr, std::min(kPanel, uv.hi - j), pm.logits.data() + j);
}

// The states from / to `state` (h of every layer, then c), each thread its units, into / from `slot`.
template <class Cell, class W>
void exchange_states(Prepared<Cell, W>& pm, float* state, Units u, int slot, bool load) {
    const int H = pm.H, L = pm.L;
    for (int l = 0; state && l < L; ++l)
        for (int j = u.lo; j < u.hi; ++j) {
            float* hs = &pm.h[(std::size_t(l) * 2 + slot) * H + j];
            float* st = &state[std::size_t(l) * H + j];
            load ? *hs = *st : *st = *hs;
            if (Cell::states == 2) {
                float* cs = &pm.c[(std::size_t(l) * 2 + slot) * H + j];
                float* sc = &state[(std::size_t(L) + l) * H + j];
                load ? *cs = *sc : *sc = *cs;
            }
        }
}

// W: the stored weight type, float, std::uint16_t (IEEE half) or std::int8_t (scaled). The whole loop runs
// in one parallel region: each thread owns a range of units (all gates of them, so the cell's pointwise
// work needs no other thread) and a range of symbols of the output layer; a barrier after each layer
// (the next reads all of h) and one after the logits; then every thread takes the next symbol from the
// policy (Sampling, Scoring).
template <class Cell, class W, class Policy>
void run_prepared(const CharModel<float>& m, Policy& policy, float* state) {
    if (Cell::input_grad_col >= 0 && !m.embed)
        throw std::invalid_argument(std::string("sampling a ") + Cell::name + " model needs an embedding (it reads x directly)");
    Prepared<Cell, W> pm(m);
    const int E = pm.E, H = pm.H, L = pm.L;
    const int threads = choose_threads(1, H, H, std::max(Cell::gates_ih, Cell::gates_hh));
    policy.set_threads(threads);
    std::vector<float> scratch(std::size_t(threads) * (std::max(E, H) + H) * kPanel);
    // Per thread, the layer's input and the recurrent vector quantised for 8-bit panels.
    const int quantised_size = std::is_same_v<W, std::int8_t> ? std::max(E, H) + H + 2 : 0;
    std::vector<std::int16_t> quantised(std::size_t(threads) * quantised_size);
    std::atomic<bool> fits{true};

    blas_single_threaded();
#pragma omp parallel num_threads(threads)
    {
        DenormalsFlushed ftz;
        const int tid = omp_get_thread_num(), team = omp_get_num_threads();
        const Units u = units_of(tid, team, H), uv = units_of(tid, team, pm.V);
        TeamBarrier::Member seat(pm.barrier, team);
        std::int16_t* qx = quantised.data() + std::size_t(tid) * quantised_size;
        std::int16_t* qh = qx + (quantised_size ? std::max(E, H) + 1 : 0);
        if (!pack_thread(pm, u, uv, scratch.data() + std::size_t(tid) * (std::max(E, H) + H) * kPanel)) fits = false;
        exchange_states(pm, state, u, 0, true);
#pragma omp barrier
        std::int32_t v = policy.first();
        const int steps = fits ? policy.feeds() : 0;
        for (int t = 0; t < steps; ++t) {
            const int in = t & 1;  // state slots: the one read this step; in ^ 1 is the one written
            for (int l = 0; l < L; ++l) {
                layer_step(pm, l, v, in, u, qx, qh);
                pm.barrier.wait();
            }
            v = policy.given(t);
            if (v >= 0) continue;
            logits_step(pm, in ^ 1, uv, qx, qh);
            pm.barrier.wait();
            v = policy.next(tid, t, pm.logits.data());
        }
        exchange_states(pm, state, u, steps > 0 ? ((steps - 1) & 1) ^ 1 : 0, false);
    }
    if (!fits)
        throw std::invalid_argument(std::is_same_v<W, std::int8_t>
                                        ? "int8 weight storage needs finite weights"
                                        : "float16 weight storage needs finite weights below 65520 in magnitude");
}

template <class T>
void check_model(const CharModel<T>& m, WeightStorage weights) {
    const std::size_t L = m.w_ih.size();
    if (L < 1 || m.w_hh.size() != L || m.b_ih.size() != L || m.b_hh.size() != L)
        throw std::invalid_argument("the model needs at least one layer and one weight of each kind per layer");
    if (m.V < 1 || m.E < 1 || m.H < 1) throw std::invalid_argument("V, E and H must be at least 1");
    if (!m.embed && m.E != m.V) throw std::invalid_argument("one-hot input needs E == V");
    if (weights != WeightStorage::Float32 && !std::is_same_v<T, float>)
        throw std::invalid_argument("float16 and int8 weight storage are for float32 models");
}

void check_symbols(const std::int32_t* ids, int n, int V, const char* what) {
    for (int i = 0; i < n; ++i)
        if (ids[i] < 0 || ids[i] >= V) throw std::invalid_argument(std::string(what) + " outside 0..V-1");
}

// Runs a policy through the engine of the model's type and the weights' storage.
template <class T, class Policy>
void run(const CharModel<T>& m, WeightStorage weights, Policy& policy, T* state) {
    if constexpr (std::is_same_v<T, float>) {
        with_cell(m.cell, [&](auto cell) {
            using Cell = decltype(cell);
            if (weights == WeightStorage::Float16)
                run_prepared<Cell, std::uint16_t>(m, policy, state);
            else if (weights == WeightStorage::Int8)
                run_prepared<Cell, std::int8_t>(m, policy, state);
            else
                run_prepared<Cell, float>(m, policy, state);
        });
    } else {
        run_by_steps(m, policy, state);
    }
}

}  // namespace

template <class T>
void sample(const CharModel<T>& m, const std::int32_t* prime, int n_prime, int length, const SampleOptions& opt,
            std::int32_t* out) {
    check_model(m, opt.weights);
    if (n_prime < 1) throw std::invalid_argument("sampling needs at least one priming symbol");
    if (length < 0) throw std::invalid_argument("length must be >= 0");
    if (!(opt.temperature >= 0.0) || !std::isfinite(opt.temperature))
        throw std::invalid_argument("temperature must be a finite number >= 0");
    if (opt.top_k < 0) throw std::invalid_argument("top_k must be >= 0");
    if (opt.exclude >= m.V || (opt.exclude >= 0 && m.V == 1))
        throw std::invalid_argument("exclude must name a symbol and leave at least one other");
    check_symbols(prime, n_prime, m.V, "priming symbol");
    if (length == 0) return;  // priming alone changes nothing visible
    Sampling policy(opt, m.V, prime, n_prime, length, out);
    run(m, opt.weights, policy, static_cast<T*>(nullptr));
}

template <class T>
double score(const CharModel<T>& m, const std::int32_t* ids, int n, WeightStorage weights, T* state) {
    check_model(m, weights);
    if (n < 0) throw std::invalid_argument("the number of symbols must be >= 0");
    check_symbols(ids, n, m.V, "symbol");
    if (n < 2) return 0.0;
    Scoring policy(m.V, ids, n);
    run(m, weights, policy, state);
    return policy.nll;
}

template void sample<float>(const CharModel<float>&, const std::int32_t*, int, int, const SampleOptions&,
                            std::int32_t*);
template void sample<double>(const CharModel<double>&, const std::int32_t*, int, int, const SampleOptions&,
                             std::int32_t*);
template double score<float>(const CharModel<float>&, const std::int32_t*, int, WeightStorage, float*);
template double score<double>(const CharModel<double>&, const std::int32_t*, int, WeightStorage, double*);

}  // namespace rnnkit
