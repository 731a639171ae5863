// Records: what a forward keeps of each step for its backward (cuDNN calls this the reserve space).
//
// B = batch, H = hidden size, R = record width of a cell (in units of H).
//
// A record is one step's row per batch element of R*H values: first the gate pre-activations the input
// projection x W_ih^T fills (one column group of H values per row block of W_ih), then whatever else
// the cell keeps for its backward (GRU: W_hn h + b_hn; GRU-Cho and the MUT cells: r * h_{t-1}). The
// recurrent products add into the columns, the cell's forward turns them into gate values in place, and
// its backward turns those into the gradients of the pre-activations, from which the weight gradients
// and dx are GEMMs after the time loop. Training keeps the records of all T steps; inference the records
// of a chunk of steps at a time.
//
// Planes: with one plane a record row holds R*H values, column group c of unit j at c*H + j. A cell whose
// record is its gates alone (Cell::split_records, the LSTM) gets, on several threads with small shares of
// units, a plane per thread instead: plane p holds thread p's units [lo, hi), rows of R*(hi - lo) values,
// column group c of unit j at c*(hi - lo) + j - lo. Each thread's records are then contiguous and apart
// from the other threads' (bench/README.md has the measurements that chose this).
#pragma once

#include <cstddef>
#include <iterator>

#include "rnnkit/gemm/packed_gemm.h"
#include "rnnkit/support/partition.h"

namespace rnnkit {

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

// The planes of a call on `team` threads: one per thread for a cell that splits its records, while a
// plane's row stays under 4 KiB; else one.
template <class Cell, class T>
int record_planes(int team, int H) {
    static_assert(!Cell::split_records ||
                  (Cell::R == Cell::gates_ih && Cell::products.size() == 1 && Cell::products[0].src < 0));
    const int widest = ((H + kPanel - 1) / kPanel + team - 1) / team * kPanel;  // units of the largest share
    return Cell::split_records && team > 1 && std::size_t(Cell::R) * widest * sizeof(T) < 4096 ? team : 1;
}

}  // namespace rnnkit
