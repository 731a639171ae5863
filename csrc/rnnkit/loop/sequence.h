// The time loop shared by every cell: forward and backward through time.
//
// B = batch, T = time, I = input size, H = hidden size, Gi = row blocks of W_ih, R = record width
// (records.h); a cell's constants are listed in cell_step.h.
//
// Work is split by hidden units: each OpenMP thread owns a contiguous range of units and, for every
// gate, the rows of W_ih/W_hh of those units, so its slice of W_hh stays in its cache for all T
// steps and the gate nonlinearities run on its own GEMM output while it is still hot. A step needs
// one barrier per cell phase: the next step's recurrent products read every unit of h.
//
// The input projection x_t W_ih^T of many steps is one GEMM into the records before the loop; the
// recurrent products accumulate into them; the cell's forward overwrites them with what backward needs,
// and its backward overwrites that with the gradients of the pre-activations, from which dW_ih, dW_hh,
// the biases and dx are GEMMs after the loop.
#pragma once

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>
#include <vector>

#include "rnnkit/support/aligned_buffer.h"
#include "rnnkit/gemm/panel_gemv.h"
#include "rnnkit/loop/cell_step.h"

namespace rnnkit {

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

// The same records from W_ih packed per gate block (inference): each thread fills its own units'
// columns and reads only its part of W_ih, packed once per call. BLAS would pack all of W_ih again for
// every chunk (every 2 steps at B = 128, H = 1024: 16 MB) on each of the threads splitting the rows.
template <class T>
void packed_input_projection(const SeqArgs<T>& a, int G, int t_base, int n, Units u, const Records<T>& rec,
                             const T* packed_ih) {
    const int own = rec.planes > 1 ? omp_get_thread_num() : 0;
    T* c = rec.row(own, 0) + u.lo - rec.units(own).lo;
    const T* x = a.x + std::size_t(t_base) * a.B * a.I;
    for (int g = 0; g < G; ++g)
        packed_gemm<T>(n * a.B, u.size(), a.I, x, a.I, gate_panels(packed_ih, g, a.H, a.I, u), false,
                       c + std::size_t(g) * rec.width(own), rec.ldr(own));
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

// Elements of the training workspace: records, then T+1 states h (and c for a cell with a cell state),
// then the number of record planes the forward used (backward must address them the same way).
template <class Cell>
std::size_t workspace_elements(int T, int B, int H) {
    return std::size_t(T) * B * Cell::R * H + std::size_t(T + 1) * B * H * Cell::states + 1;
}

// Inference keeps the records of a chunk of steps at a time, so its memory does not grow with T: as
// many steps as fit in this many bytes (at least one). Few rows a step (a small batch) make long chunks,
// so W_ih is streamed once per many steps and does not push W_hh out of the cache between chunks; many
// rows make short ones, whose records stay in cache between the input projection that writes them and
// the steps that read them.
constexpr std::size_t kInferenceChunkBytes = std::size_t(4) << 20;

template <class Cell, class T>
int inference_chunk(int T_, int B, int H) {
    const std::size_t step_bytes = std::size_t(B) * Cell::R * H * sizeof(T);
    return int(std::clamp<std::size_t>(kInferenceChunkBytes / step_bytes, 1, std::size_t(T_)));
}

// The threads of a cell's call: its products' work per step (multiply-adds) decides.
template <class Cell>
int threads_for(int B, int H, int I) {
    return choose_threads(B, H, I, std::max(Cell::gates_ih, Cell::gates_hh));
}

// What a forward call sets up before its threads start: sizes, and where each buffer lives.
template <class T>
struct ForwardPlan {
    const SeqArgs<T>* a;
    T* y;
    T* h_n;
    T* c_n;
    T* ws;         // the training workspace, or null for inference
    bool train, embedded;
    int chunk = 0;     // steps whose records are kept at once
    int nt = 0;        // threads asked for
    T* packed = nullptr;     // W_hh packed per gate block (null for a single step, and with packed_half)
    T* packed_ih = nullptr;  // W_ih packed per gate block (inference over several steps of a dense input)
    std::uint16_t* packed_half = nullptr;  // a half W_hh at batch 1: its panels as IEEE half (packed is null)
    std::atomic<bool>* w_hh_fits_half = nullptr;  // cleared by a thread that rounded a value of W_hh to no half
    T* bias = nullptr;       // [R*H] per record column
    T* table_proj = nullptr;  // an embedded input's projections of the V table rows, in the records' planes
    T* rec = nullptr;        // the records
    T* hs = nullptr;         // state slots h (training: T+1 in time order; inference: two alternating)
    T* cs = nullptr;         // the same for c, or null
    T* w_rec_buffer = nullptr;  // room for W_ih in the records' order (planes with a row-split projection)
    TeamBarrier* barrier = nullptr;  // the steps' barrier

    // Training keeps every state in time order (slot t is h_{t-1} going forward, slot t+1 going
    // backward), so dW_hh is one GEMM over all steps; inference alternates two slots.
    int slot_in(int s, int t) const { return train ? (a->reverse ? t + 1 : t) : (s & 1); }
    int slot_out(int s, int t) const { return train ? (a->reverse ? t : t + 1) : ((s + 1) & 1); }
    // Whether the input projection is split by rows (a decoding step's few rows take W_ih by units).
    bool row_split(int team) const {
        return !packed_ih && (embedded ? a->V : chunk * a->B) >= kMinRowsPerThread * team;
    }
};

// A half W_hh: this thread's panels of it, as half at batch 1 (one panel at a time through float
// staging), else rounded in place.
inline void pack_w_hh_half(const ForwardPlan<float>& f, int gates, Units u) {
    const SeqArgs<float>& a = *f.a;
    const int H = a.H;
    bool fits = true;
    if (f.packed_half) {
        AlignedBuffer<float> staging(std::size_t(kPanel) * H);
        for (int g = 0; g < gates; ++g)
            for (int p = 0; p < panels_of(u.size()); ++p) {
                const int lo = u.lo + p * kPanel;
                pack_panels<float>(std::min(kPanel, u.hi - lo), H, a.w_hh + (std::size_t(g) * H + lo) * H, H, 1,
                                   staging.data());
                fits &= to_half(staging.data(), std::size_t(kPanel) * H,
                                gate_panels(f.packed_half, g, H, H, u) + std::size_t(p) * kPanel * H);
            }
    } else {
        for (int g = 0; g < gates; ++g) {
            float* panels = gate_panels(f.packed, g, H, H, u);
            fits &= round_to_half(panels, std::size_t(panels_of(u.size())) * kPanel * H, panels);
        }
    }
    if (!fits) f.w_hh_fits_half->store(false);
}

// A thread's set-up: packing its units of W_hh (and of W_ih where the plan packs it), W_ih in the planes'
// order, the table's projection, and the initial states of its units.
template <class Cell, class T>
const T* forward_setup(const ForwardPlan<T>& f, Units u, const Records<T>& records, const Records<T>& table) {
    const SeqArgs<T>& a = *f.a;
    const int team = omp_get_num_threads();
    // Each thread packs, and later reads, only its own units.
    if (f.packed) pack_gate_rows(a.w_hh, Cell::gates_hh, a.H, a.H, u, f.packed);
    if constexpr (std::is_same_v<T, float>)
        if (a.half_w_hh && a.T > 1) pack_w_hh_half(f, Cell::gates_hh, u);
    if (f.packed_ih) pack_gate_rows(a.w_ih, Cell::gates_ih, a.H, a.I, u, f.packed_ih);
    const T* w_rec = f.row_split(team) ? w_ih_in_record_order(a, records, Cell::gates_ih, f.w_rec_buffer) : nullptr;
    if (f.embedded) {  // the table's V rows as one step of a batch of V
        SeqArgs<T> rows = a;
        rows.B = a.V;
#pragma omp barrier
        input_projection(rows, Cell::gates_ih, 0, 1, u, table, w_rec);  // reads every thread's part of w_rec
    }
    const int first_t = a.reverse ? a.T - 1 : 0;
    const std::size_t in0 = std::size_t(f.slot_in(0, first_t)) * a.B * a.H;
    for (int b = 0; b < a.B; ++b) {
        std::memcpy(f.hs + in0 + b * a.H + u.lo, a.h0 + b * a.H + u.lo, u.size() * sizeof(T));
        if (f.cs) std::memcpy(f.cs + in0 + b * a.H + u.lo, a.c0 + b * a.H + u.lo, u.size() * sizeof(T));
    }
    return w_rec;
}

// One thread's part of a forward: set-up, the time loop, the final states.
template <class Cell, class T>
void forward_thread(const ForwardPlan<T>& f) {
    const SeqArgs<T>& a = *f.a;
    const int T_ = a.T, B = a.B, H = a.H, tid = omp_get_thread_num(), team = omp_get_num_threads();
    const Units u = units_of(tid, team, H);
    TeamBarrier::Member seat(*f.barrier, team);
    // The team OpenMP gives (one thread inside another parallel region) sets the planes.
    const Records<T> records{f.rec, f.chunk, B, Cell::R, H, record_planes<Cell, T>(team, H)};
    const Records<T> table{f.table_proj, 1, a.V, Cell::gates_ih, H, records.planes};
    const int own = records.planes > 1 ? tid : 0;  // this thread's plane
    if (f.train && tid == 0) f.ws[workspace_elements<Cell>(T_, B, H) - 1] = T(records.planes);
    const T* w_rec = forward_setup<Cell>(f, u, records, table);
    int t_base = 0;
    for (int s = 0; s < T_; ++s) {
        const int t = a.reverse ? T_ - 1 - s : s;
        if (s % f.chunk == 0) {
            const int n = std::min(f.chunk, T_ - s);
            t_base = a.reverse ? t - n + 1 : t;
            // The records are about to be overwritten: every thread must be done with the last chunk.
            f.barrier->wait();
            if (f.embedded)
                gather_projection(a, Cell::gates_ih, t_base, n, records, table);
            else if (f.packed_ih)
                packed_input_projection(a, Cell::gates_ih, t_base, n, u, records, f.packed_ih);
            else
                input_projection(a, Cell::gates_ih, t_base, n, u, records, w_rec);
        }
        Step<T> st;
        st.a = &a, st.t = t, st.records = &records, st.s = t - t_base;
        st.ldr = records.ldr(own), st.gs = records.width(own), st.lo = records.units(own).lo;
        st.rec = records.row(own, st.s);
        st.hprev = f.hs + std::size_t(f.slot_in(s, t)) * B * H;
        st.hout = f.hs + std::size_t(f.slot_out(s, t)) * B * H;
        if (f.cs) st.cprev = f.cs + std::size_t(f.slot_in(s, t)) * B * H, st.cout = f.cs + std::size_t(f.slot_out(s, t)) * B * H;
        st.x = f.embedded ? a.x : a.x + std::size_t(t) * B * a.I;
        st.ids = f.embedded ? a.ids + std::size_t(t) * B : nullptr;
        st.packed = f.packed, st.packed_half = f.packed_half, st.bias = f.bias, st.barrier = f.barrier;
        f.barrier->wait();
        step_forward<Cell>(st, u);
        if (f.y)
            for (int b = 0; b < B; ++b) {
                T* yb = f.y + (std::size_t(t) * B + b) * H;
                if (st.valid(b))
                    std::memcpy(yb + u.lo, st.hout + b * H + u.lo, u.size() * sizeof(T));
                else
                    std::memset(yb + u.lo, 0, u.size() * sizeof(T));
            }
    }
    const std::size_t out = std::size_t(f.slot_out(T_ - 1, a.reverse ? 0 : T_ - 1)) * B * H;
    for (int b = 0; b < B; ++b) {
        std::memcpy(f.h_n + b * H + u.lo, f.hs + out + b * H + u.lo, u.size() * sizeof(T));
        if (f.cs) std::memcpy(f.c_n + b * H + u.lo, f.cs + out + b * H + u.lo, u.size() * sizeof(T));
    }
}

// `scratch` grows to what the call needs beyond `ws`; a caller that keeps it between calls (the
// single-step decoder) allocates nothing after the first.
template <class Cell, class T>
void run_forward(const SeqArgs<T>& given, T* y, T* h_n, T* c_n, T* ws, AlignedBuffer<T>& scratch) {
    const int T_ = given.T, B = given.B, H = given.H, I = given.I, Gi = Cell::gates_ih;
    const bool half = given.half_w_hh;
    if (half && (!std::is_same_v<T, float> || ws))
        throw std::invalid_argument("a half W_hh is for the inference of float32 layers");
    SeqArgs<T> a = given;  // a single step with a half W_hh reads a rounded copy
    ForwardPlan<T> f{&a, y, h_n, c_n, ws, ws != nullptr, a.ids != nullptr};
    f.chunk = f.train ? T_ : inference_chunk<Cell, T>(T_, B, H);
    f.nt = threads_for<Cell>(B, H, I);
    const std::size_t states = f.train ? 0 : 2 * std::size_t(B) * H * Cell::states;
    const std::size_t panels_size = T_ > 1 ? std::size_t(Cell::gates_hh) * panels_of(H) * kPanel * H : 0;
    // A half W_hh at batch 1 is packed as half (two values to a float), and not as float.
    const std::size_t packed_half_size = half && B == 1 ? (panels_size + 1) / 2 : 0;
    const std::size_t packed_size = packed_half_size ? 0 : panels_size;
    // Packing W_ih costs a read and a write of it; BLAS reads all of it on each thread for every chunk.
    // With few chunks that is less traffic, and no second copy takes room in the L3 from W_hh's: one
    // chunk (training, inference of few rows) is one GEMM, and the LSTM at B = 16, H = 1024, T = 32 (two
    // chunks) took 26 ms with BLAS, 33 packed; from 4 chunks on, packing pays (bench/hosts/amd-epyc/SPEED2.md).
    const bool pack_ih = !f.train && !f.embedded && T_ >= 4 * f.chunk;
    const std::size_t packed_ih_size = pack_ih ? std::size_t(Gi) * panels_of(H) * kPanel * I : 0;
    const std::size_t bias_size = std::size_t(Cell::R) * H;
    const std::size_t table_size = f.embedded ? std::size_t(a.V) * Gi * H : 0;
    const std::size_t records_size = f.train ? 0 : std::size_t(f.chunk) * B * Cell::R * H;
    // A single step reads W_hh unpacked: with a half W_hh, a rounded copy. Both start on a cache line, as
    // the float panels do.
    const std::size_t used = packed_size + packed_ih_size + bias_size + table_size + records_size + states;
    const std::size_t half_at = (used + 15) / 16 * 16;
    const std::size_t w_hh_size = half && !panels_size ? std::size_t(Cell::gates_hh) * H * H : 0;
    scratch.reserve(half_at + packed_half_size + w_hh_size);
    f.packed = packed_size ? scratch.data() : nullptr;
    f.packed_ih = pack_ih ? scratch.data() + packed_size : nullptr;
    f.bias = scratch.data() + packed_size + packed_ih_size;
    f.table_proj = f.bias + bias_size;
    f.rec = f.train ? ws : f.table_proj + table_size;
    f.hs = f.train ? ws + std::size_t(T_) * B * Cell::R * H : f.rec + records_size;
    f.cs = Cell::states == 2 ? f.hs + std::size_t(f.train ? T_ + 1 : 2) * B * H : nullptr;
    std::atomic<bool> w_hh_fits_half{true};
    if constexpr (std::is_same_v<T, float>)
        if (half) {
            f.packed_half = packed_half_size ? reinterpret_cast<std::uint16_t*>(scratch.data() + half_at) : nullptr;
            if (w_hh_size) {
                T* w_hh = scratch.data() + half_at;
                if (!round_to_half(given.w_hh, w_hh_size, w_hh)) w_hh_fits_half = false;
                a.w_hh = w_hh;
            }
            f.w_hh_fits_half = &w_hh_fits_half;
        }
    AlignedBuffer<T> w_rec_buffer(f.row_split(1) && record_planes<Cell, T>(f.nt, H) > 1 ? std::size_t(Gi) * H * I : 0);
    f.w_rec_buffer = w_rec_buffer.data();
    TeamBarrier barrier;
    f.barrier = &barrier;
    fold_biases<Cell>(a.b_ih, a.b_hh, H, f.bias);

    blas_single_threaded();
#pragma omp parallel num_threads(f.nt)
    {
        DenormalsFlushed ftz;
        forward_thread<Cell>(f);
    }
    if (!w_hh_fits_half)
        throw std::invalid_argument(
            "a half W_hh: W_hh holds a value of magnitude >= 65520, an infinity or a NaN, which no IEEE half holds");
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

// What a backward call sets up before its threads start.
template <class T>
struct BackwardPlan {
    const SeqArgs<T>* a;
    const T* dy;
    const T* dh_n;
    const T* dc_n;
    T* dx;
    T* dh0;
    T* dc0;
    T* dw_ih;
    T* dw_hh;
    T* db_ih;
    T* db_hh;
    bool accumulate;
    bool to_input;   // dx is the gradient w.r.t. x (else w.r.t. the projection x W_ih^T)
    bool by_symbol;  // an embedded input: dW_ih and dx from the gradients summed per symbol (V rows, not T*B)
    int planes;
    Records<T> records;
    Records<T> sums;     // the per-symbol sums, when by_symbol
    T* hs = nullptr;               // the forward's states, slots in time order
    T* cs = nullptr;
    T* packed = nullptr;           // W_hh packed per product (pack_backward)
    T* dh = nullptr;               // [B, H] the gradient w.r.t. the state being carried back
    T* dc = nullptr;               // [B, H]
    T* source_grads = nullptr;     // [R][B, H] (Step::source_grad)
    T* column_sums = nullptr;      // [R*H] the pre-activation gradients summed over steps and batch: the bias gradients
    const T* w_rec = nullptr;      // W_ih in the records' column order: W_ih itself with one plane, else w_rec_buffer
    T* w_rec_buffer = nullptr;     // filled by the threads, each its own plane's rows (w_ih_in_record_order)
    TeamBarrier* barrier = nullptr;  // the steps' barrier
    T* plane_dw = nullptr;         // [Gi*H, max(I, H)] the planes' weight gradients before they are added in gate order
                         // (thread p's from row Gi*lo_p)
    const T* x = nullptr;          // what dW_ih multiplies: x, or the table, with unread non-finite rows zeroed

    const Records<T>& in_grads() const { return by_symbol ? sums : records; }
    std::size_t in_rows() const { return by_symbol ? std::size_t(a->V) : std::size_t(a->T) * a->B; }
};

// The time loop of one thread, from dh_n, dc_n back to dh0, dc0, summing the bias gradients on the way.
template <class Cell, class T>
void backward_time_loop(const BackwardPlan<T>& g, Units u, int own) {
    const SeqArgs<T>& a = *g.a;
    const int T_ = a.T, B = a.B, H = a.H;
    for (int b = 0; b < B; ++b)
        for (int j = u.lo; j < u.hi; ++j) {
            g.dh[b * H + j] = g.dh_n ? g.dh_n[b * H + j] : T(0);
            g.dc[b * H + j] = g.dc_n ? g.dc_n[b * H + j] : T(0);
        }
    for (int c = 0; c < Cell::R; ++c)
        for (int j = u.lo; j < u.hi; ++j) g.column_sums[c * H + j] = T(0);
    for (int s = T_ - 1; s >= 0; --s) {
        const int t = a.reverse ? T_ - 1 - s : s;
        const int in = a.reverse ? t + 1 : t, out = a.reverse ? t : t + 1;
        Step<T> st;
        st.a = &a, st.t = t, st.records = &g.records, st.s = t;
        st.ldr = g.records.ldr(own), st.gs = g.records.width(own), st.lo = g.records.units(own).lo;
        st.rec = g.records.row(own, t);
        st.hprev = g.hs + std::size_t(in) * B * H, st.hout = g.hs + std::size_t(out) * B * H;
        if (g.cs) st.cprev = g.cs + std::size_t(in) * B * H, st.cout = g.cs + std::size_t(out) * B * H, st.dc = g.dc;
        st.dh = g.dh, st.source_grads = g.source_grads, st.packed = g.packed, st.barrier = g.barrier;
        // dy counts only at valid steps: past its length an output is the constant 0.
        for (int b = 0; b < B; ++b)
            if (st.valid(b)) {
                const T* dyb = g.dy + (std::size_t(t) * B + b) * H;
#pragma omp simd
                for (int j = u.lo; j < u.hi; ++j) g.dh[b * H + j] += dyb[j];
            }
        step_backward<Cell>(st, u);
        // Bias gradients are column sums of the gate gradients, taken while this step's are in cache
        // (a pass of their own after the loop would read all T*B*R*H of them back from memory).
        if (g.db_ih)
            for (int b = 0; b < B; ++b)
                for (int c = 0; c < Cell::R; ++c) {
                    const T* row = st.col(b, c);
                    T* sum = g.column_sums + c * H;
#pragma omp simd
                    for (int j = u.lo; j < u.hi; ++j) sum[j] += row[j];
                }
    }
    for (int b = 0; b < B; ++b) {
        std::memcpy(g.dh0 + b * H + u.lo, g.dh + b * H + u.lo, u.size() * sizeof(T));
        if (g.cs) std::memcpy(g.dc0 + b * H + u.lo, g.dc + b * H + u.lo, u.size() * sizeof(T));
    }
}

// dW (+)= grads^T src for rows [rows.lo, rows.hi) of dW: one GEMM over all n rows of the records (so BLAS
// packs the source of the product once).
template <class T>
void weight_grad(bool accumulate, Units rows, std::size_t n, const T* grads, int ld_grads, const T* src, int ld_src,
                 int K, T* dw) {
    if (rows.size() > 0)
        gemm<T>(true, false, rows.size(), K, int(n), T(1), grads, ld_grads, src, ld_src, T(accumulate),
                dw + std::size_t(rows.lo) * K, K);
}

// With planes: one GEMM over the thread's own plane, whose rows come out in the plane's order and are
// added into the weight's gate blocks.
template <class Cell, class T>
void plane_weight_grad(const BackwardPlan<T>& g, Units u, int own, const Records<T>& grads, std::size_t rows,
                       const T* src, int ld_src, int K, T* dw) {
    constexpr int G = Cell::gates_ih;
    const int H = g.a->H;
    T* plane_dw = g.plane_dw + std::size_t(G) * u.lo * std::max(g.a->I, H);  // this thread's rows
    gemm<T>(true, false, G * u.size(), K, int(rows), T(1), grads.row(own, 0), grads.ldr(own), src, ld_src, T(0),
            plane_dw, K);
    for (int gate = 0; gate < G; ++gate)
        for (int j = u.lo; j < u.hi; ++j) {
            const T* from = plane_dw + std::size_t(gate * u.size() + j - u.lo) * K;
            T* to = dw + (std::size_t(gate) * H + j) * K;
#pragma omp simd
            for (int k = 0; k < K; ++k) to[k] = g.accumulate ? to[k] + from[k] : from[k];
        }
}

// dW_ih over every step's input-side gradients (or the V symbol sums) and dW_hh per product, for this
// thread's share of the rows.
template <class Cell, class T>
void weight_gradients(const BackwardPlan<T>& g, int tid, int nt, Units u, int own) {
    const SeqArgs<T>& a = *g.a;
    const int H = a.H, I = a.I, ldr = Cell::R * H;
    const std::size_t TB = std::size_t(a.T) * a.B;
    const T* h_prev_all = g.hs + (a.reverse ? std::size_t(a.B) * H : 0);
    if (g.planes > 1) {
        static_assert(!Cell::split_records || Cell::products[0].src == kPrevState);
        if (g.to_input) plane_weight_grad<Cell>(g, u, own, g.in_grads(), g.in_rows(), g.x, I, I, g.dw_ih);
        plane_weight_grad<Cell>(g, u, own, g.records, TB, h_prev_all, H, H, g.dw_hh);
        return;
    }
    const Units ih = share_of(tid, nt, 0, Cell::gates_ih * H);
    if (g.to_input)
        weight_grad(g.accumulate, ih, g.in_rows(), g.in_grads().base + ih.lo, g.in_grads().ldr(0), g.x, I, I, g.dw_ih);
    for (const Product& pr : Cell::products) {
        const Units rows = share_of(tid, nt, pr.rows_lo * H, pr.rows_hi * H);
        const bool from_state = pr.src == kPrevState;
        weight_grad(g.accumulate, rows, TB, g.records.base + pr.col * H + rows.lo - pr.rows_lo * H, ldr,
                    from_state ? h_prev_all : g.records.base + pr.src * H, from_state ? H : ldr, H, g.dw_hh);
    }
}

// Each bias block reads the column sum of the record column it was added to, for this thread's units.
template <class Cell, class T>
void bias_gradients(const BackwardPlan<T>& g, Units u) {
    const int H = g.a->H;
    // Not keep*db + sum: without `accumulate` db holds whatever the memory held, NaN included.
    auto put = [&](T* db, std::size_t k, int col) {
        for (int j = u.lo; j < u.hi; ++j) {
            const T sum = g.column_sums[col * H + j];
            db[k * H + j] = g.accumulate ? db[k * H + j] + sum : sum;
        }
    };
    for (std::size_t k = 0; k < Cell::bias_ih_cols.size(); ++k) put(g.db_ih, k, Cell::bias_ih_cols[k]);
    for (std::size_t k = 0; k < Cell::bias_hh_cols.size(); ++k) put(g.db_hh, k, Cell::bias_hh_cols[k]);
}

// dx = dG_in W_ih (of an embedded input: the symbol sums times W_ih), split by rows (one GEMM per plane);
// the projection's gradient is dG_in itself, in W_ih's row order.
template <class Cell, class T>
void input_gradients(const BackwardPlan<T>& g, int tid, int nt) {
    constexpr int G = Cell::gates_ih;
    const int H = g.a->H, I = g.a->I;
    const Records<T>& grads = g.to_input ? g.in_grads() : g.records;
    const auto [r0, r1] = even_share(tid, nt, g.to_input ? g.in_rows() : std::size_t(g.a->T) * g.a->B);
    for (int p = 0; p < g.planes; ++p) {
        const Units pu = g.records.units(p);
        const T* plane = grads.row(p, 0);
        const int ldp = grads.ldr(p);
        if (g.to_input)
            gemm<T>(false, false, int(r1 - r0), I, G * pu.size(), T(1), plane + r0 * ldp, ldp,
                    g.w_rec + std::size_t(G) * pu.lo * I, I, T(p > 0), g.dx + r0 * I, I);
        else
            for (std::size_t r = r0; r < r1; ++r)
                for (int gate = 0; gate < G; ++gate)
                    std::memcpy(g.dx + r * G * H + gate * H + pu.lo, plane + r * ldp + gate * pu.size(),
                                pu.size() * sizeof(T));
    }
}

// dx += the gradient of the terms where x enters the cell directly (the cell's input_grad_col), for this
// thread's units (I == H): row by row in order, so an embedded input's table rows sum the same bits at
// any thread count.
template <class Cell, class T>
void direct_input_gradient(const BackwardPlan<T>& g, Units u) {
    const SeqArgs<T>& a = *g.a;
    const std::size_t TB = std::size_t(a.T) * a.B;
    const int ldr = Cell::R * a.H;
    for (std::size_t r = 0; r < TB; ++r) {
        const T* from = g.records.base + r * ldr + Cell::input_grad_col * a.H;
        T* to = g.dx + (a.ids ? std::size_t(a.ids[r]) : r) * a.I;
#pragma omp simd
        for (int j = u.lo; j < u.hi; ++j) to[j] += from[j];
    }
}

// One thread's part of a backward, in phases with barriers between them.
template <class Cell, class T>
void backward_thread(const BackwardPlan<T>& g, int tid, int nt) {
    const Units u = units_of(tid, nt, g.a->H);
    const int own = g.planes > 1 ? tid : 0;  // this thread's plane
    TeamBarrier::Member seat(*g.barrier, nt);
    pack_backward<Cell>(*g.a, g.planes, u, g.packed);
    if (g.to_input) w_ih_in_record_order(*g.a, g.records, Cell::gates_ih, g.w_rec_buffer);
    backward_time_loop<Cell>(g, u, own);
#pragma omp barrier
    if (g.by_symbol) {
        sum_by_symbol(*g.a, Cell::gates_ih, u, own, g.records, g.sums);
#pragma omp barrier
    }
    weight_gradients<Cell>(g, tid, nt, u, own);
    if (g.db_ih) bias_gradients<Cell>(g, u);
    input_gradients<Cell>(g, tid, nt);
    if constexpr (Cell::input_grad_col >= 0) {
#pragma omp barrier
        direct_input_gradient<Cell>(g, u);
    }
}

// The number of record planes a training forward left in its workspace; throws if there is none.
template <class Cell, class T>
int planes_of_workspace(const SeqArgs<T>& a, const T* ws) {
    const T saved = ws[workspace_elements<Cell>(a.T, a.B, a.H) - 1];
    const int planes = saved >= T(1) && saved <= T(4096) ? int(saved) : 0;
    if (planes == 0 || T(planes) != saved || (!Cell::split_records && planes != 1))
        throw std::invalid_argument("the workspace does not hold a training forward of these arguments");
    return planes;
}

template <class Cell, class T>
void run_backward(const SeqArgs<T>& a, T* ws, const T* dy, const T* dh_n, const T* dc_n, T* dx, T* dh0,
                  T* dc0, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh, bool accumulate, InputGradient input_grad) {
    const int T_ = a.T, B = a.B, H = a.H, I = a.I, Gi = Cell::gates_ih;
    const bool to_input = input_grad == InputGradient::Input;
    if (!to_input && Cell::input_grad_col >= 0)
        throw std::invalid_argument(std::string("the projection gradient leaves out where x enters the cell directly: "
                                                "not available for ") + Cell::name);
    const int planes = planes_of_workspace<Cell>(a, ws);
    const bool by_symbol = to_input && a.ids;
    const std::size_t packed_size = backward_packed_size<Cell>(H);
    AlignedBuffer<T> local(packed_size + std::size_t(B) * H * (2 + Cell::R) + std::size_t(Cell::R) * H);
    AlignedBuffer<T> w_rec_buffer(planes > 1 && to_input ? std::size_t(Gi) * H * I : 0);
    AlignedBuffer<T> dw_buffer(planes > 1 ? std::size_t(Gi) * H * std::max(I, H) : 0);
    AlignedBuffer<T> symbol_sums(by_symbol ? std::size_t(a.V) * Gi * H : 0);
    std::vector<T> x_clean;
    BackwardPlan<T> g{&a, dy, dh_n, dc_n, dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh, accumulate, to_input, by_symbol,
                      planes, Records<T>{ws, T_, B, Cell::R, H, planes},
                      Records<T>{symbol_sums.data(), 1, a.V, Gi, H, planes}};
    g.hs = ws + std::size_t(T_) * B * Cell::R * H;
    g.cs = Cell::states == 2 ? g.hs + std::size_t(T_ + 1) * B * H : nullptr;
    g.packed = local.data();
    g.dh = g.packed + packed_size;
    g.dc = g.dh + std::size_t(B) * H;
    g.source_grads = g.dc + std::size_t(B) * H;
    g.column_sums = g.source_grads + std::size_t(Cell::R) * B * H;
    g.w_rec_buffer = w_rec_buffer.data();
    g.w_rec = planes > 1 ? g.w_rec_buffer : a.w_ih;
    g.plane_dw = dw_buffer.data();
    TeamBarrier barrier;
    g.barrier = &barrier;
    g.x = !to_input ? nullptr : by_symbol ? table_for_weight_grad(a, x_clean) : x_for_weight_grad(a, x_clean);

    // As many threads as the forward's planes (any number with one plane).
    const int nt = planes > 1 ? planes : threads_for<Cell>(B, H, I);
    bool wrong_team = false;
    blas_single_threaded();
#pragma omp parallel num_threads(nt)
    {
        DenormalsFlushed ftz;
        const int tid = omp_get_thread_num(), team = omp_get_num_threads();
        if (planes > 1 && team != planes) {  // e.g. inside another parallel region: some planes unread
            if (tid == 0) wrong_team = true;
        } else {
            backward_thread<Cell>(g, tid, team);
        }
    }
    if (wrong_team)
        throw std::runtime_error("backward must run on as many threads as its forward split the records into (" +
                                 std::to_string(planes) + ")");
}

}  // namespace rnnkit
