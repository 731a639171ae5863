// The time loop shared by every cell: forward and backward through time.
//
// B = batch, T = time, I = input size, H = hidden size, G = gates, R = record width (in units of H)
//
// Work is split by hidden units: each OpenMP thread owns a contiguous range of units and, for every
// gate, the rows of W_ih/W_hh of those units, so its slice of W_hh stays in its cache for all T
// steps and the gate nonlinearities run on its own GEMM output while it is still hot. A step needs
// one barrier: the next step's recurrent GEMM reads every unit of h.
//
// Per step a cell keeps a record of B rows x R*H values (gates first, in w_ih's row order; for an LSTM
// on several threads, a plane per thread, see Records). The input projection x_t W_ih^T of many
// steps is one GEMM into those records before the loop; the recurrent GEMM accumulates into them; the
// cell's forward overwrites them with what backward needs, and its backward overwrites that with the
// gate gradients, from which dW_ih, dW_hh, the biases and dx are GEMMs after the loop.
#pragma once

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "activations.h"
#include "aligned_buffer.h"
#include "blas.h"
#include "packed_gemm.h"
#include "partition.h"
#include "rnnkit.h"

namespace rnnkit {

// Where a block of hidden-side gate gradients lives and what it multiplies in dW_hh.
struct HiddenSegment {
    int gate_lo, gate_hi;  // rows [gate_lo*H, gate_hi*H) of w_hh
    int record_col;        // column of gate_lo's gradient in the record, in units of H
    int source_col;        // -1: the previous state h_{t-1}; else that record column (GRU-Cho: r*h)
};

// How a call's records are laid out. With one plane a record row holds R*H values, column group c (a
// gate, or another value the cell keeps) of unit j at c*H + j. An LSTM on several threads with small
// shares of units gets a plane per thread instead: plane p holds thread p's units [lo, hi), rows of
// R*(hi - lo) values, column group c of unit j at c*(hi - lo) + j - lo. Measured (2 threads, float32,
// bench/README.md): an LSTM layer at H = 256, B = 32 runs its forward in 0.90-0.97 of the time and its
// backward in ~0.99; at H = 512 no change, at H = 1024 8-12% slower, and a tanh RNN gains nothing.
template <class T>
struct Records {
    T* base;
    int steps, B, R, H, planes;

    Units units(int p) const { return units_of(p, planes, H); }
    int width(int p) const { return units(p).size(); }  // plane p's distance between column groups
    int ldr(int p) const { return R * width(p); }
    // Row 0 of step s (counted from the records' first step) in plane p.
    T* row(int p, int s) const {
        return base + std::size_t(steps) * B * R * units(p).lo + std::size_t(s) * B * ldr(p);
    }
};

// The planes of a call on `team` threads: one per thread, for a cell that splits its records
// (Cell::split_records: its record is its G gates alone and its backward multiplies all of them by W_hh
// at once), while a plane's row stays under 4 KiB.
template <class Cell, class T>
int record_planes(int team, int H) {
    static_assert(!Cell::split_records || (Cell::R == Cell::G && std::size(Cell::hidden_segments) == 1));
    const int widest = ((H + kPanel - 1) / kPanel + team - 1) / team * kPanel;  // units of the largest share
    return Cell::split_records && team > 1 && std::size_t(Cell::R) * widest * sizeof(T) < 4096 ? team : 1;
}

// What one step of a cell sees, for one thread's units.
template <class T>
struct Step {
    const SeqArgs<T>* a;
    int t;           // time index of this step
    const Records<T>* records;
    int s;           // this step's index in the records
    int ldr, gs, lo;  // in this thread's plane: row stride, column-group stride, first unit
    T* rec;          // [B rows] this step's record in this thread's plane
    const T* hprev;  // [B, H] state before the step
    const T* cprev;  // [B, H] LSTM cell before the step
    T* hout;         // [B, H] state after the step
    T* cout;         // [B, H]
    // backward only
    T* dh;       // [B, H] in: dL/dh_out; out: dL/dh_prev (the cell adds the W_hh product itself)
    T* dc;       // [B, H] LSTM: in dL/dc_out, out dL/dc_prev (in place)
    T* scratch;  // [B, H] cell-private
    // W_hh packed for this call (see packed_gemm.h): forward, per gate; backward, per hidden segment
    const T* packed;
    // forward only: [G*H] bias the cell adds to the hoisted projection (b_ih, plus b_hh where it is not
    // gated separately), zeros without bias. Added while activating, not in a pass of its own.
    const T* bias;

    bool valid(int b) const { return !a->lengths || t < a->lengths[b]; }

    // Column group c of row b, indexed by unit: col(b, c)[j] for this thread's units j.
    T* col(int b, int c) const { return rec + b * ldr + c * gs - lo; }

    // Past an element's length its state is carried unchanged.
    void carry(int b, Units u) const {
        const int H = a->H;
        std::memcpy(hout + b * H + u.lo, hprev + b * H + u.lo, u.size() * sizeof(T));
        if (cout) std::memcpy(cout + b * H + u.lo, cprev + b * H + u.lo, u.size() * sizeof(T));
    }

    // ...and backward passes dh, dc through it untouched, with no gate gradient.
    void no_gradient(int b, Units u, int R) const {
        for (int g = 0; g < R; ++g) std::memset(col(b, g) + u.lo, 0, u.size() * sizeof(T));
    }
};

// C[:, gate g, units] (beta*C +)= A * W[g*H + units, :]^T for gates [g0, g1); c is gate g0's first
// unit, gate g's at c + (g - g0)*gs. One BLAS call when the thread owns every unit of contiguous gates,
// else one per gate.
template <class T>
void gemm_gate_rows(int rows, int K, const T* a, int lda, const T* w, int H, int g0, int g1, Units u,
                    T beta, T* c, int ldc, int gs) {
    if (u.size() <= 0) return;
    if (u.lo == 0 && u.hi == H && gs == H) {
        gemm<T>(false, true, rows, (g1 - g0) * H, K, T(1), a, lda, w + std::size_t(g0) * H * K, K,
                beta, c, ldc);
        return;
    }
    for (int g = g0; g < g1; ++g)
        gemm<T>(false, true, rows, u.size(), K, T(1), a, lda, w + (std::size_t(g) * H + u.lo) * K, K,
                beta, c + (g - g0) * gs, ldc);
}

// C[:, gate g, units] (+)= A * W_hh[g*H + units, :]^T for gates [g0, g1), with c the record column
// group of gate g0 (st.rec plus a multiple of st.gs): the recurrent product of a forward step.
template <class T>
void recurrent_gemm(const Step<T>& st, Units u, int g0, int g1, const T* a, int lda, bool accumulate, T* c) {
    const int H = st.a->H;
    c += u.lo - st.lo;
    if (!st.packed)  // a single step: packing would cost as much as the product itself
        return gemm_gate_rows<T>(st.a->B, H, a, lda, st.a->w_hh, H, g0, g1, u, T(accumulate), c, st.ldr, st.gs);
    for (int g = g0; g < g1; ++g)
        packed_gemm<T>(st.a->B, u.size(), H, a, lda, st.packed + (std::size_t(g) * panels_of(H) + u.lo / kPanel) * kPanel * H,
                       accumulate, c + (g - g0) * st.gs, st.ldr);
}

// Forward packing: gate g's rows of W_hh for these units, as panels of output units over k = H.
template <class T>
void pack_forward(const SeqArgs<T>& a, int G, Units u, T* packed) {
    const int H = a.H;
    for (int g = 0; g < G; ++g)
        pack_panels<T>(u.size(), H, a.w_hh + (std::size_t(g) * H + u.lo) * H, H, 1,
                       packed + (std::size_t(g) * panels_of(H) + u.lo / kPanel) * kPanel * H);
}

// Backward packing: segment s's rows of W_hh, columns = these units, as panels over k = its rows. With
// planar records, one such matrix per plane, its k rows in the plane's column order.
template <class T, std::size_t N>
void pack_backward(const SeqArgs<T>& a, const HiddenSegment (&segs)[N], int planes, Units u, T* packed) {
    const int H = a.H;
    if (planes > 1) {
        const int G = segs[0].gate_hi;
        for (int p = 0; p < planes; ++p) {
            const Units pu = units_of(p, planes, H);
            const int K = G * pu.size();
            for (int g = 0; g < G; ++g)
                pack_panels<T>(u.size(), pu.size(), a.w_hh + (std::size_t(g) * H + pu.lo) * H + u.lo, 1, H,
                               packed + std::size_t(u.lo / kPanel) * kPanel * K + std::size_t(g) * pu.size() * kPanel,
                               K);
            packed += std::size_t(panels_of(H)) * kPanel * K;
        }
        return;
    }
    for (const HiddenSegment& seg : segs) {
        const int K = (seg.gate_hi - seg.gate_lo) * H;
        pack_panels<T>(u.size(), K, a.w_hh + std::size_t(seg.gate_lo) * H * H + u.lo, 1, H,
                       packed + std::size_t(u.lo / kPanel) * kPanel * K);
        packed += std::size_t(panels_of(H)) * kPanel * K;
    }
}

template <class T, std::size_t N>
const T* segment_panels(const T* packed, const HiddenSegment (&segs)[N], int s, int H) {
    for (int i = 0; i < s; ++i) packed += std::size_t(panels_of(H)) * kPanel * (segs[i].gate_hi - segs[i].gate_lo) * H;
    return packed;
}

// C[:, units] (+)= dG[:, segment s's gradient columns] * W_hh[segment s's rows, units]
template <class T, std::size_t N>
void segment_gemm(const Step<T>& st, Units u, const HiddenSegment (&segs)[N], int s, bool accumulate, T* c) {
    const int H = st.a->H;
    if (st.records && st.records->planes > 1) {  // a planar cell's one segment: every column of every plane
        const Records<T>& r = *st.records;
        const T* panels = st.packed;
        for (int p = 0; p < r.planes; ++p) {
            const int K = r.ldr(p);
            packed_gemm<T>(st.a->B, u.size(), K, r.row(p, st.s), K, panels + std::size_t(u.lo / kPanel) * kPanel * K,
                           accumulate || p > 0, c + u.lo, H);
            panels += std::size_t(panels_of(H)) * kPanel * K;
        }
        return;
    }
    const HiddenSegment& seg = segs[s];
    const int K = (seg.gate_hi - seg.gate_lo) * H;
    packed_gemm<T>(st.a->B, u.size(), K, st.rec + seg.record_col * H, st.ldr,
                   segment_panels(st.packed, segs, s, H) + std::size_t(u.lo / kPanel) * kPanel * K, accumulate,
                   c + u.lo, H);
}

// The gradient reaching h_{t-1} through segment s of W_hh: dh[:, units] += dG_s W_hh_s.
template <class T, std::size_t N>
void backprop_to_state(const Step<T>& st, Units u, const HiddenSegment (&segs)[N], int s) {
    segment_gemm(st, u, segs, s, true, st.dh);
}

int choose_threads(int B, int H, int I, int G);

// W_ih with its rows in the records' column order (the caller's buffer), this thread's plane of it; with
// one plane, W_ih itself.
template <class T>
const T* w_ih_in_record_order(const SeqArgs<T>& a, const Records<T>& rec, int G, T* buffer) {
    if (rec.planes == 1) return a.w_ih;
    const Units pu = rec.units(omp_get_thread_num());
    for (int g = 0; g < G; ++g)
        std::memcpy(buffer + (std::size_t(G) * pu.lo + std::size_t(g) * pu.size()) * a.I,
                    a.w_ih + (std::size_t(g) * a.H + pu.lo) * a.I, std::size_t(pu.size()) * a.I * sizeof(T));
    return buffer;
}

// Records of steps [t_base, t_base + n) = x_t W_ih^T, the records' first steps; w_rec is W_ih in their
// column order. Split by rows, each thread makes one GEMM per plane over every gate's columns (they are
// contiguous in a plane's row), so x is packed once per plane, not once per gate.
template <class T>
void input_projection(const SeqArgs<T>& a, int G, int t_base, int n, Units u, const Records<T>& rec,
                      const T* w_rec) {
    const int rows = n * a.B, tid = omp_get_thread_num(), nt = omp_get_num_threads();
    const T* x = a.x + std::size_t(t_base) * a.B * a.I;
    if (rows < kMinRowsPerThread * nt) {
        const int p = rec.planes > 1 ? tid : 0;
        return gemm_gate_rows<T>(rows, a.I, x, a.I, a.w_ih, a.H, 0, G, u, T(0), rec.row(p, 0) + u.lo - rec.units(p).lo,
                                 rec.ldr(p), rec.width(p));
    }
    const Span<int> r = even_share(tid, nt, rows);
    for (int p = 0; p < rec.planes; ++p)
        gemm<T>(false, true, r.hi - r.lo, G * rec.width(p), a.I, T(1), x + std::size_t(r.lo) * a.I, a.I,
                w_rec + std::size_t(G) * rec.units(p).lo * a.I, a.I, T(0),
                rec.row(p, 0) + std::size_t(r.lo) * rec.ldr(p), rec.ldr(p));
}

// Records of steps [t_base, t_base + n) of an embedded input: row r of the step is row ids[r] of
// `table`, the table's projections in the same planes. Split by rows.
template <class T>
void gather_projection(const SeqArgs<T>& a, int G, int t_base, int n, const Records<T>& rec, const Records<T>& table) {
    const Span<int> r = even_share(omp_get_thread_num(), omp_get_num_threads(), n * a.B);
    const std::int64_t* ids = a.ids + std::size_t(t_base) * a.B;
    for (int p = 0; p < rec.planes; ++p) {
        const std::size_t bytes = std::size_t(G) * rec.width(p) * sizeof(T);
        for (int i = r.lo; i < r.hi; ++i)
            std::memcpy(rec.row(p, 0) + std::size_t(i) * rec.ldr(p), table.row(p, 0) + ids[i] * table.ldr(p), bytes);
    }
}

// Elements of the training workspace: records, then T+1 states h (and c for LSTM), then the number of
// record planes the forward used (backward must address them the same way).
template <class Cell>
std::size_t workspace_elements(int T, int B, int H) {
    return std::size_t(T) * B * Cell::R * H + std::size_t(T + 1) * B * H * (Cell::has_c ? 2 : 1) + 1;
}

// Inference keeps records for this many steps at a time, so its memory does not grow with T.
constexpr int kInferenceChunk = 16;

// `scratch` grows to what the call needs beyond `ws`; a caller that keeps it between calls (the
// single-step decoder) allocates nothing after the first.
template <class Cell, class T>
void run_forward(const SeqArgs<T>& a, T* y, T* h_n, T* c_n, T* ws, AlignedBuffer<T>& scratch) {
    const int T_ = a.T, B = a.B, H = a.H, I = a.I, G = Cell::G, ldr = Cell::R * H;
    const bool train = ws != nullptr;
    const int chunk = train ? T_ : std::min(T_, kInferenceChunk);
    const std::size_t states = train ? 0 : 2 * std::size_t(B) * H * (Cell::has_c ? 2 : 1);
    const int nt = choose_threads(B, H, I, G);
    const bool embedded = a.ids != nullptr;
    const std::size_t packed_size = T_ > 1 ? std::size_t(G) * panels_of(H) * kPanel * H : 0;
    // An embedded input's projections of the V table rows, in the records' planes.
    const std::size_t table_size = embedded ? std::size_t(a.V) * G * H : 0;
    const std::size_t need =
        packed_size + std::size_t(G) * H + table_size + (train ? 0 : std::size_t(chunk) * B * ldr + states);
    scratch.reserve(need);
    T* packed = scratch.data();
    T* bias = packed + packed_size;
    // W_ih in the records' order, for projections of enough rows to be split by rows (a decoding step's
    // few rows take W_ih by units and need no copy).
    auto row_split = [&](int team) {
        return (embedded ? a.V : chunk * B) >= kMinRowsPerThread * team;
    };
    AlignedBuffer<T> w_rec_buffer(row_split(1) && record_planes<Cell, T>(nt, H) > 1 ? std::size_t(G) * H * I : 0);
    T* table_proj = bias + G * H;
    T* rec = train ? ws : table_proj + table_size;
    T* hs = rec + std::size_t(chunk) * B * ldr;
    T* cs = Cell::has_c ? hs + std::size_t(train ? T_ + 1 : 2) * B * H : nullptr;

    for (int g = 0; g < G; ++g)
        for (int j = 0; j < H; ++j)
            bias[g * H + j] = !a.b_ih ? T(0)
                              : a.b_ih[g * H + j] + (Cell::folds_hidden_bias(g) ? a.b_hh[g * H + j] : T(0));
    // State slots: training keeps every state in time order (slot t is h_{t-1} going forward, slot
    // t+1 going backward), so dW_hh is one GEMM over all steps; inference alternates two slots.
    auto slot_in = [&](int s, int t) { return train ? (a.reverse ? t + 1 : t) : (s & 1); };
    auto slot_out = [&](int s, int t) { return train ? (a.reverse ? t : t + 1) : ((s + 1) & 1); };
    const int first_t = a.reverse ? T_ - 1 : 0;
    const int last_t = a.reverse ? 0 : T_ - 1;

    blas_single_threaded();
#pragma omp parallel num_threads(nt)
    {
        DenormalsFlushed ftz;
        const int tid = omp_get_thread_num(), team = omp_get_num_threads();
        const Units u = units_of(tid, team, H);
        // The team OpenMP gives (one thread inside another parallel region) sets the planes.
        const Records<T> records{rec, chunk, B, Cell::R, H, record_planes<Cell, T>(team, H)};
        const Records<T> table{table_proj, 1, a.V, G, H, records.planes};
        const int own = records.planes > 1 ? tid : 0;  // this thread's plane
        if (train && tid == 0) ws[workspace_elements<Cell>(T_, B, H) - 1] = T(records.planes);
        if (T_ > 1) pack_forward(a, G, u, packed);  // each thread packs, and later reads, only its own units
        const T* w_rec = row_split(team) ? w_ih_in_record_order(a, records, G, w_rec_buffer.data()) : nullptr;
        if (embedded) {  // the table's V rows as one step of a batch of V
            SeqArgs<T> rows = a;
            rows.B = a.V;
#pragma omp barrier
            input_projection(rows, G, 0, 1, u, table, w_rec);  // reads every thread's part of w_rec
        }
        const std::size_t in0 = std::size_t(slot_in(0, first_t)) * B * H;
        for (int b = 0; b < B; ++b) {
            std::memcpy(hs + in0 + b * H + u.lo, a.h0 + b * H + u.lo, u.size() * sizeof(T));
            if (cs) std::memcpy(cs + in0 + b * H + u.lo, a.c0 + b * H + u.lo, u.size() * sizeof(T));
        }
        int t_base = 0;
        for (int s = 0; s < T_; ++s) {
            const int t = a.reverse ? T_ - 1 - s : s;
            if (s % chunk == 0) {
                const int n = std::min(chunk, T_ - s);
                t_base = a.reverse ? t - n + 1 : t;
                // The records are about to be overwritten: every thread must be done with the last chunk.
#pragma omp barrier
                if (embedded)
                    gather_projection(a, G, t_base, n, records, table);
                else
                    input_projection(a, G, t_base, n, u, records, w_rec);
            }
            Step<T> st{&a, t, &records, t - t_base, records.ldr(own), records.width(own), records.units(own).lo,
                       records.row(own, t - t_base),
                       hs + std::size_t(slot_in(s, t)) * B * H, cs ? cs + std::size_t(slot_in(s, t)) * B * H : nullptr,
                       hs + std::size_t(slot_out(s, t)) * B * H, cs ? cs + std::size_t(slot_out(s, t)) * B * H : nullptr,
                       nullptr, nullptr, nullptr, T_ > 1 ? packed : nullptr, bias};
#pragma omp barrier
            Cell::forward(st, u);
            if (y)
                for (int b = 0; b < B; ++b) {
                    T* yb = y + (std::size_t(t) * B + b) * H;
                    if (st.valid(b))
                        std::memcpy(yb + u.lo, st.hout + b * H + u.lo, u.size() * sizeof(T));
                    else
                        std::memset(yb + u.lo, 0, u.size() * sizeof(T));
                }
        }
        const std::size_t out = std::size_t(slot_out(T_ - 1, last_t)) * B * H;
        for (int b = 0; b < B; ++b) {
            std::memcpy(h_n + b * H + u.lo, hs + out + b * H + u.lo, u.size() * sizeof(T));
            if (cs) std::memcpy(c_n + b * H + u.lo, cs + out + b * H + u.lo, u.size() * sizeof(T));
        }
    }
}

// Padding rows get zero gate gradients, but 0 * inf is NaN: a non-finite value in x past an element's
// length would poison dW_ih = dG^T x. Returns x, or a copy in `clean` with such padding zeroed.
template <class T>
const T* x_for_weight_grad(const SeqArgs<T>& a, std::vector<T>& clean) {
    if (!a.lengths) return a.x;
    const std::size_t row = a.I;
    bool poisoned = false;
    for (int b = 0; b < a.B && !poisoned; ++b)
        for (int t = int(a.lengths[b]); t < a.T && !poisoned; ++t)
            for (std::size_t k = 0; k < row; ++k)
                if (!std::isfinite(a.x[(std::size_t(t) * a.B + b) * row + k])) { poisoned = true; break; }
    if (!poisoned) return a.x;
    clean.assign(a.x, a.x + std::size_t(a.T) * a.B * row);
    for (int b = 0; b < a.B; ++b)
        for (int t = int(a.lengths[b]); t < a.T; ++t)
            std::fill_n(clean.data() + (std::size_t(t) * a.B + b) * row, row, T(0));
    return clean.data();
}

// The same for an embedded input, whose dW_ih is (symbol sums)^T x: a table row that no valid step reads
// has a zero sum, and a non-finite value in it would still poison dW_ih. Returns the table, or a copy in
// `clean` with such rows zeroed.
template <class T>
const T* table_for_weight_grad(const SeqArgs<T>& a, std::vector<T>& clean) {
    const std::size_t row = a.I, rows = std::size_t(a.V);
    if (std::all_of(a.x, a.x + rows * row, [](T v) { return std::isfinite(v); })) return a.x;
    std::vector<char> read(rows, 0);
    for (int t = 0; t < a.T; ++t)
        for (int b = 0; b < a.B; ++b)
            if (!a.lengths || t < a.lengths[b]) read[a.ids[std::size_t(t) * a.B + b]] = 1;
    clean.assign(a.x, a.x + rows * row);
    for (std::size_t v = 0; v < rows; ++v)
        if (!read[v]) std::fill_n(clean.data() + v * row, row, T(0));
    return clean.data();
}

// The gate gradients of an embedded input summed per symbol: sums row v = the sum of the records' rows
// whose id is v (padding rows hold zero gradients). Each thread sums its own units' columns, in row
// order, so the sums are the same bits at any thread count.
template <class T>
void sum_by_symbol(const SeqArgs<T>& a, int G, Units u, int own, const Records<T>& rec, const Records<T>& sums) {
    const std::size_t rows = std::size_t(a.T) * a.B;
    const int shift = u.lo - rec.units(own).lo;  // this thread's first column within its plane's gate
    T* const base = sums.row(own, 0) + shift;
    for (int v = 0; v < a.V; ++v)
        for (int g = 0; g < G; ++g) std::memset(base + std::size_t(v) * sums.ldr(own) + g * sums.width(own), 0, u.size() * sizeof(T));
    for (std::size_t r = 0; r < rows; ++r) {
        const T* from = rec.row(own, 0) + r * rec.ldr(own) + shift;
        T* to = base + a.ids[r] * sums.ldr(own);
        for (int g = 0; g < G; ++g) {
            const T* f = from + g * rec.width(own);
            T* d = to + g * sums.width(own);
#pragma omp simd
            for (int j = 0; j < u.size(); ++j) d[j] += f[j];
        }
    }
}

template <class Cell, class T>
void run_backward(const SeqArgs<T>& a, T* ws, const T* dy, const T* dh_n, const T* dc_n, T* dx, T* dh0,
                  T* dc0, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh, bool accumulate, InputGradient input_grad) {
    const bool to_input = input_grad == InputGradient::Input;
    // An embedded input's gradients come from the gate gradients summed per symbol (V rows, not T*B).
    const bool by_symbol = to_input && a.ids;
    const int T_ = a.T, B = a.B, H = a.H, I = a.I, G = Cell::G, ldr = Cell::R * H;
    const std::size_t TB = std::size_t(T_) * B;
    T* rec = ws;
    T* hs = rec + TB * ldr;
    T* cs = Cell::has_c ? hs + std::size_t(T_ + 1) * B * H : nullptr;
    // The record planes of the forward, and as many threads to read them (any number with one plane).
    const T saved = ws[workspace_elements<Cell>(T_, B, H) - 1];
    const int planes = saved >= T(1) && saved <= T(4096) ? int(saved) : 0;
    if (planes == 0 || T(planes) != saved || (!Cell::split_records && planes != 1))
        throw std::invalid_argument("the workspace does not hold a training forward of these arguments");
    const int nt = planes > 1 ? planes : choose_threads(B, H, I, G);
    std::size_t packed_size = 0;
    for (const HiddenSegment& seg : Cell::hidden_segments)
        packed_size += std::size_t(panels_of(H)) * kPanel * (seg.gate_hi - seg.gate_lo) * H;
    AlignedBuffer<T> local(packed_size + std::size_t(B) * H * 3 + std::size_t(Cell::R) * H);
    T* packed = local.data();
    T* dh = packed + packed_size;
    // Weight-sized buffers of the planes (W_ih in their order, their weight gradients).
    const int dw_cols = std::max(I, H);
    AlignedBuffer<T> w_rec_buffer(planes > 1 && to_input ? std::size_t(G) * H * I : 0);
    AlignedBuffer<T> dw_buffer(planes > 1 ? std::size_t(G) * H * dw_cols : 0);
    AlignedBuffer<T> symbol_sums(by_symbol ? std::size_t(a.V) * G * H : 0);
    T* column_sums = dh + std::size_t(B) * H * 3;
    std::vector<T> x_clean;
    const T* x = !to_input ? nullptr : by_symbol ? table_for_weight_grad(a, x_clean) : x_for_weight_grad(a, x_clean);
    T* dc = dh + B * H;
    T* scratch = dc + B * H;
    const Records<T> records{rec, T_, B, Cell::R, H, planes};
    // What dW_ih and dx are products of: the gate gradients of every step, or their sums per symbol.
    const Records<T> sums{symbol_sums.data(), 1, a.V, G, H, planes};
    const Records<T>& in_grads = by_symbol ? sums : records;
    const std::size_t in_rows = by_symbol ? std::size_t(a.V) : TB;

    auto thread_part = [&](int tid, int nt) {
        const Units u = units_of(tid, nt, H);
        const int own = planes > 1 ? tid : 0;  // this thread's plane
        pack_backward(a, Cell::hidden_segments, planes, u, packed);
        const T* w_rec = to_input ? w_ih_in_record_order(a, records, G, w_rec_buffer.data()) : nullptr;
        for (int b = 0; b < B; ++b)
            for (int j = u.lo; j < u.hi; ++j) {
                dh[b * H + j] = dh_n ? dh_n[b * H + j] : T(0);
                dc[b * H + j] = dc_n ? dc_n[b * H + j] : T(0);
            }
        for (int c = 0; c < Cell::R; ++c)
            for (int j = u.lo; j < u.hi; ++j) column_sums[c * H + j] = T(0);
        for (int s = T_ - 1; s >= 0; --s) {
            const int t = a.reverse ? T_ - 1 - s : s;
            const int in = a.reverse ? t + 1 : t, out = a.reverse ? t : t + 1;
            Step<T> st{&a, t, &records, t, records.ldr(own), records.width(own), records.units(own).lo,
                       records.row(own, t),
                       hs + std::size_t(in) * B * H, cs ? cs + std::size_t(in) * B * H : nullptr,
                       hs + std::size_t(out) * B * H, cs ? cs + std::size_t(out) * B * H : nullptr,
                       dh, cs ? dc : nullptr, scratch, packed, nullptr};  // backward adds no bias
            // dy counts only at valid steps: past its length an output is the constant 0.
            for (int b = 0; b < B; ++b)
                if (st.valid(b)) {
                    const T* dyb = dy + (std::size_t(t) * B + b) * H;
#pragma omp simd
                    for (int j = u.lo; j < u.hi; ++j) dh[b * H + j] += dyb[j];
                }
            Cell::backward(st, u);
            // Bias gradients are column sums of the gate gradients, taken while this step's are in cache
            // (a pass of their own after the loop would read all T*B*R*H of them back from memory).
            if (db_ih)
                for (int b = 0; b < B; ++b)
                    for (int c = 0; c < Cell::R; ++c) {
                        const T* row = st.col(b, c);
                        T* sum = column_sums + c * H;
#pragma omp simd
                        for (int j = u.lo; j < u.hi; ++j) sum[j] += row[j];
                    }
        }
        for (int b = 0; b < B; ++b) {
            std::memcpy(dh0 + b * H + u.lo, dh + b * H + u.lo, u.size() * sizeof(T));
            if (cs) std::memcpy(dc0 + b * H + u.lo, dc + b * H + u.lo, u.size() * sizeof(T));
        }
#pragma omp barrier
        if (by_symbol) {
            sum_by_symbol(a, G, u, own, records, sums);
#pragma omp barrier
        }
        // Weight gradients: per weight one GEMM over all T*B rows (dW_ih of an embedded input: over the V
        // symbol sums), for this thread's share of its rows (a single call, so BLAS packs the source of the
        // product once); with planes, over the thread's own plane, whose rows come out in the plane's order
        // and are added into the weight's gate by gate.
        const T* h_prev_all = hs + (a.reverse ? std::size_t(B) * H : 0);
        auto weight_grad = [&](Units rows, std::size_t n, const T* grads, int ld_grads, const T* src, int ld_src, int K,
                               T* dw) {
            if (rows.size() > 0)
                gemm<T>(true, false, rows.size(), K, int(n), T(1), grads, ld_grads, src, ld_src, T(accumulate),
                        dw + std::size_t(rows.lo) * K, K);
        };
        const Units ih = share_of(tid, nt, 0, G * H);
        if (planes > 1) {
            static_assert(!Cell::split_records || Cell::hidden_segments[0].source_col < 0);
            T* plane_dw = dw_buffer.data() + std::size_t(G) * u.lo * dw_cols;
            auto plane_grad = [&](const Records<T>& grads, std::size_t rows, const T* src, int ld_src, int K, T* dw) {
                gemm<T>(true, false, G * u.size(), K, int(rows), T(1), grads.row(own, 0), grads.ldr(own), src, ld_src,
                        T(0), plane_dw, K);
                for (int g = 0; g < G; ++g)
                    for (int j = u.lo; j < u.hi; ++j) {
                        const T* from = plane_dw + std::size_t(g * u.size() + j - u.lo) * K;
                        T* to = dw + (std::size_t(g) * H + j) * K;
#pragma omp simd
                        for (int k = 0; k < K; ++k) to[k] = accumulate ? to[k] + from[k] : from[k];
                    }
            };
            if (to_input) plane_grad(in_grads, in_rows, x, I, I, dw_ih);
            plane_grad(records, TB, h_prev_all, H, H, dw_hh);
        } else {
            if (to_input) weight_grad(ih, in_rows, in_grads.base + ih.lo, in_grads.ldr(0), x, I, I, dw_ih);
            for (const HiddenSegment& seg : Cell::hidden_segments) {
                const Units rows = share_of(tid, nt, seg.gate_lo * H, seg.gate_hi * H);
                weight_grad(rows, TB, rec + seg.record_col * H + rows.lo - seg.gate_lo * H, ldr,
                            seg.source_col < 0 ? h_prev_all : rec + seg.source_col * H, seg.source_col < 0 ? H : ldr,
                            H, dw_hh);
            }
        }
        // Each bias row reads its column sum (b_ih and b_hh often share one).
        if (db_ih) {
            // Not keep*db + sum: without `accumulate` db holds whatever the memory held, NaN included.
            auto put = [accumulate](T& d, T sum) { d = accumulate ? d + sum : sum; };
            for (int j = ih.lo; j < ih.hi; ++j) put(db_ih[j], column_sums[j]);
            for (const HiddenSegment& seg : Cell::hidden_segments) {
                const Units rows = share_of(tid, nt, seg.gate_lo * H, seg.gate_hi * H);
                for (int j = rows.lo; j < rows.hi; ++j)
                    put(db_hh[j], column_sums[seg.record_col * H + j - seg.gate_lo * H]);
            }
        }
        // dx = dG_in W_ih (of an embedded input: the symbol sums times W_ih), split by rows (one GEMM per
        // plane); the projection's gradient is dG_in itself, in W_ih's row order.
        const auto [r0, r1] = even_share(tid, nt, to_input ? in_rows : TB);
        for (int p = 0; p < planes; ++p) {
            const Units pu = records.units(p);
            const T* plane = (to_input ? in_grads : records).row(p, 0);
            const int ldp = (to_input ? in_grads : records).ldr(p);
            if (to_input)
                gemm<T>(false, false, int(r1 - r0), I, G * pu.size(), T(1), plane + r0 * ldp, ldp,
                        w_rec + std::size_t(G) * pu.lo * I, I, T(p > 0), dx + r0 * I, I);
            else
                for (std::size_t r = r0; r < r1; ++r)
                    for (int g = 0; g < G; ++g)
                        std::memcpy(dx + r * G * H + g * H + pu.lo, plane + r * ldp + g * pu.size(),
                                    pu.size() * sizeof(T));
        }
    };

    bool wrong_team = false;
    blas_single_threaded();
#pragma omp parallel num_threads(nt)
    {
        DenormalsFlushed ftz;
        const int tid = omp_get_thread_num(), team = omp_get_num_threads();
        if (planes > 1 && team != planes) {  // e.g. inside another parallel region: some planes unread
            if (tid == 0) wrong_team = true;
        } else {
            thread_part(tid, team);
        }
    }
    if (wrong_team)
        throw std::runtime_error("backward must run on as many threads as its forward split the records into (" +
                                 std::to_string(planes) + ")");
}

}  // namespace rnnkit
