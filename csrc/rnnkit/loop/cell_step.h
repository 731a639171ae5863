// What a cell is to the time loop, and one step of any cell, forward and backward.
//
// B = batch, I = input size, H = hidden size, R = record width (records.h)
//
// A cell is a struct of constants and two pointwise functions (rnn_cell.h, lstm_cell.h, gru_cell.h,
// mut_cells.h); the loop reads the constants and does every matrix product:
//   name                 the registry's name ("lstm")
//   gates_ih             row blocks of W_ih; x W_ih^T fills record columns [0, gates_ih)
//   gates_hh             row blocks of W_hh
//   R                    record width in column groups of H
//   states               1 (h) or 2 (h and the cell state c)
//   phases               pointwise phases per step; a barrier separates two (a later phase's products
//                        read what an earlier phase wrote for every unit, e.g. r * h)
//   products             the recurrent products (Product below), each before the pointwise phase it names
//   bias_ih_cols         the record column each block of b_ih adds to (its gradient is that column's sum)
//   bias_hh_cols         the same for b_hh (empty for a cell with one bias vector)
//   input_grad_col       -1, or the record column whose backward value is added to dx: the gradient of
//                        the terms where x enters the cell directly (MUT1's tanh(x), MUT2's x in r);
//                        such a cell needs I == H and reads its raw input through Step::input
//   split_records        its records may be split in planes (records.h)
//   forward(p, st, u)    the pointwise work of phase p: gate values over the products, new states
//   backward(p, st, u)   phase p's gradients, written over the values forward kept (run for p = phases-1
//                        down to 0)
#pragma once

#include <algorithm>
#include <array>
#include <cstddef>
#include <cstring>
#include <type_traits>

#include "rnnkit/cells/activations.h"
#include "rnnkit/gemm/blas.h"
#include "rnnkit/gemm/packed_gemm.h"
#include "rnnkit/support/partition.h"
#include "rnnkit/support/team_barrier.h"
#include "rnnkit/loop/records.h"
#include "rnnkit/rnnkit.h"

namespace rnnkit {

// The source of a product that is the state before the step, h_{t-1}.
constexpr int kPrevState = -1;

// One recurrent product: record column group `col` (+)= src W_hh[rows]^T. Backward, once `col` holds the
// gradient of the pre-activation, makes its two transposes: d(src) = d(col) W_hh[rows] (into dh for
// h_{t-1}, else into the source's gradient slot, Step::source_grad) and dW_hh[rows] += d(col)^T src.
struct Product {
    int rows_lo, rows_hi;  // row blocks [rows_lo, rows_hi) of W_hh; columns col .. col + rows_hi - rows_lo - 1
    int col;
    int src;          // kPrevState, or the record column holding the source (r * h, tanh(h))
    int phase;        // runs before the pointwise phase of this number
    bool accumulate;  // adds to what the column holds (the input projection), else overwrites it
};

// What one step of a cell sees, for one thread's units. Built field by field by the loops.
template <class T>
struct Step {
    const SeqArgs<T>* a = nullptr;
    int t = 0;                        // time index of this step
    const Records<T>* records = nullptr;  // null for a single step outside a sequence (the sampler)
    int s = 0;                        // this step's index in the records
    int ldr = 0, gs = 0, lo = 0;      // in this thread's plane: row stride, column-group stride, first unit
    T* rec = nullptr;                 // [B rows] this step's record in this thread's plane
    const T* hprev = nullptr;         // [B, H] state before the step
    const T* cprev = nullptr;         // [B, H] cell state before the step (states == 2)
    T* hout = nullptr;                // [B, H] state after the step
    T* cout = nullptr;                // [B, H]
    const T* x = nullptr;             // the step's raw inputs: [B, I], or with ids the table [V, I]
    const std::int64_t* ids = nullptr;  // [B] the step's rows of the table, or null
    // backward only
    T* dh = nullptr;           // [B, H] in: dL/dh_out; out: dL/dh_prev (the loop adds the W_hh products)
    T* dc = nullptr;           // [B, H] in dL/dc_out, out dL/dc_prev (in place)
    T* source_grads = nullptr;  // [R][B, H]: the gradient of record column c's source values at c*B*H
    // W_hh packed for this call (see packed_gemm.h): forward per gate block, backward per product
    const T* packed = nullptr;
    // forward only: W_hh's panels as IEEE half (a batch of one with a half W_hh; packed is then null)
    const std::uint16_t* packed_half = nullptr;
    // forward only: [R*H] the bias of each record column (zeros without bias), added while activating
    const T* bias = nullptr;
    TeamBarrier* barrier = nullptr;   // the team's barrier between phases

    bool valid(int b) const { return !a->lengths || t < a->lengths[b]; }

    // Column group c of row b, indexed by unit: col(b, c)[j] for this thread's units j.
    T* col(int b, int c) const { return rec + b * ldr + c * gs - lo; }
    const T* bias_of(int c) const { return bias + c * a->H; }
    // Element b's raw input x_t (cells with input_grad_col >= 0 only; there I == H, indexed by unit).
    const T* input(int b) const { return x + (ids ? ids[b] : b) * std::size_t(a->I); }
    T* source_grad(int b, int c) const { return source_grads + (std::size_t(c) * a->B + b) * a->H; }

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

// The bias of each record column [R*H]: the blocks of b_ih and b_hh added into the columns they belong
// to; zeros without bias.
template <class Cell, class T>
void fold_biases(const T* b_ih, const T* b_hh, int H, T* bias) {
    std::fill_n(bias, std::size_t(Cell::R) * H, T(0));
    if (!b_ih) return;
    for (std::size_t k = 0; k < Cell::bias_ih_cols.size(); ++k)
        for (int j = 0; j < H; ++j) bias[Cell::bias_ih_cols[k] * H + j] += b_ih[k * H + j];
    for (std::size_t k = 0; k < Cell::bias_hh_cols.size(); ++k)
        for (int j = 0; j < H; ++j) bias[Cell::bias_hh_cols[k] * H + j] += b_hh[k * H + j];
}

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

// In a weight packed by pack_gate_rows (below), where gate block g's panels for units from u.lo start.
template <class P>
P* gate_panels(P* packed, int g, int H, int K, Units u) {
    return packed + (std::size_t(g) * panels_of(H) + u.lo / kPanel) * kPanel * K;
}

// Forward packing: gate block g's rows of a weight for these units (W_hh: k = H; W_ih: k = I), as
// panels of output units over k.
template <class T>
void pack_gate_rows(const T* w, int gates, int H, int K, Units u, T* packed) {
    for (int g = 0; g < gates; ++g)
        pack_panels<T>(u.size(), K, w + (std::size_t(g) * H + u.lo) * K, K, 1, gate_panels(packed, g, H, K, u));
}

// One forward product for this thread's units.
template <class T>
void product_forward(const Step<T>& st, Units u, const Product& pr) {
    const int H = st.a->H;
    const T* src = pr.src == kPrevState ? st.hprev : st.rec + pr.src * st.gs;
    const int ld = pr.src == kPrevState ? H : st.ldr;
    T* c = st.rec + pr.col * st.gs + u.lo - st.lo;
    if constexpr (std::is_same_v<T, float>)
        if (st.packed_half) {
            for (int g = pr.rows_lo; g < pr.rows_hi; ++g)
                packed_gemv(u.size(), H, src, gate_panels(st.packed_half, g, H, H, u), pr.accumulate,
                            c + (g - pr.rows_lo) * st.gs);
            return;
        }
    if (!st.packed)  // a single step: packing would cost as much as the product itself
        return gemm_gate_rows<T>(st.a->B, H, src, ld, st.a->w_hh, H, pr.rows_lo, pr.rows_hi, u, T(pr.accumulate), c,
                                 st.ldr, st.gs);
    for (int g = pr.rows_lo; g < pr.rows_hi; ++g)
        packed_gemm<T>(st.a->B, u.size(), H, src, ld, gate_panels(st.packed, g, H, H, u), pr.accumulate,
                       c + (g - pr.rows_lo) * st.gs, st.ldr);
}

// Elements of the backward packing of W_hh: per product, its rows as panels over k = its rows.
template <class Cell>
std::size_t backward_packed_size(int H) {
    std::size_t n = 0;
    for (const Product& pr : Cell::products) n += std::size_t(panels_of(H)) * kPanel * (pr.rows_hi - pr.rows_lo) * H;
    return n;
}

// Backward packing: product i's rows of W_hh, columns = these units, as panels over k = its rows. With
// planar records (one product over every gate), one such matrix per plane, its k rows in the plane's
// column order.
template <class Cell, class T>
void pack_backward(const SeqArgs<T>& a, int planes, Units u, T* packed) {
    const int H = a.H;
    if (planes > 1) {
        constexpr int G = Cell::gates_hh;
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
    for (const Product& pr : Cell::products) {
        const int K = (pr.rows_hi - pr.rows_lo) * H;
        pack_panels<T>(u.size(), K, a.w_hh + std::size_t(pr.rows_lo) * H * H + u.lo, 1, H,
                       packed + std::size_t(u.lo / kPanel) * kPanel * K);
        packed += std::size_t(panels_of(H)) * kPanel * K;
    }
}

// C[:, units] (+)= d(col of product i) * W_hh[product i's rows, units]: the gradient reaching its source.
template <class Cell, class T>
void product_backward(const Step<T>& st, Units u, int i, bool accumulate, T* c) {
    const int H = st.a->H;
    if (st.records && st.records->planes > 1) {  // a planar cell's one product: every column of every plane
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
    const T* panels = st.packed;
    for (int k = 0; k < i; ++k)
        panels += std::size_t(panels_of(H)) * kPanel * (Cell::products[k].rows_hi - Cell::products[k].rows_lo) * H;
    const Product& pr = Cell::products[i];
    const int K = (pr.rows_hi - pr.rows_lo) * H;
    packed_gemm<T>(st.a->B, u.size(), K, st.rec + pr.col * H, st.ldr, panels + std::size_t(u.lo / kPanel) * kPanel * K,
                   accumulate, c + u.lo, H);
}

// One forward step of a cell: each phase's products, then its pointwise work.
template <class Cell, class T>
void step_forward(const Step<T>& st, Units u) {
    for (int p = 0; p < Cell::phases; ++p) {
        if (p > 0) st.barrier->wait();
        for (const Product& pr : Cell::products)
            if (pr.phase == p) product_forward(st, u, pr);
        Cell::forward(p, st, u);
    }
}

// One backward step: the phases in reverse, each followed by the transposes of its products (which read
// the gradients of every unit, hence the barrier).
template <class Cell, class T>
void step_backward(const Step<T>& st, Units u) {
    for (int p = Cell::phases - 1; p >= 0; --p) {
        Cell::backward(p, st, u);
        st.barrier->wait();
        for (std::size_t i = 0; i < Cell::products.size(); ++i) {
            const Product& pr = Cell::products[i];
            if (pr.phase != p) continue;
            if (pr.src == kPrevState)
                product_backward<Cell>(st, u, int(i), true, st.dh);
            else
                product_backward<Cell>(st, u, int(i), false, st.source_grad(0, pr.src));
        }
    }
}

}  // namespace rnnkit
