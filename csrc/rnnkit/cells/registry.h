// The registry of cells: the one list that maps a CellId to its cell type. Adding a cell is its header, one
// line in `Registry`, and its id in CellId (rnnkit.h) and in the C API's enum (rnnkit/c_api.h, capi.pxd),
// which tests/test_cells.py checks against this list; everything else (shapes, checks, names, Python's
// layer classes and --cell choices, the sampler) derives from the cell's constants.
#pragma once

#include <stdexcept>
#include <string>
#include <tuple>

#include "rnnkit/cells/gru_cell.h"
#include "rnnkit/cells/lstm_cell.h"
#include "rnnkit/cells/mut_cells.h"
#include "rnnkit/cells/rnn_cell.h"
#include "rnnkit/rnnkit.h"

namespace rnnkit {

using Registry = std::tuple<RnnCell<false>, RnnCell<true>, LstmCell, GruCell, GruChoCell, Mut1Cell, Mut2Cell, Mut3Cell>;
static_assert(std::tuple_size_v<Registry> == kNumCells);

namespace detail {
template <std::size_t K, class F>
decltype(auto) with_cell_from(int id, F&& f) {
    if constexpr (K + 1 < std::tuple_size_v<Registry>) {
        if (id != int(K)) return with_cell_from<K + 1>(id, std::forward<F>(f));
    } else if (id != int(K)) {
        throw std::invalid_argument("unknown rnnkit cell id " + std::to_string(id));
    }
    return f(std::tuple_element_t<K, Registry>{});
}
}  // namespace detail

// Calls f with a value of the cell type of `cell` (its static members and templates carry the cell).
template <class F>
decltype(auto) with_cell(CellId cell, F&& f) {
    return detail::with_cell_from<0>(int(cell), std::forward<F>(f));
}

template <class Cell>
constexpr CellInfo info_of() {
    return {Cell::name,
            Cell::gates_ih,
            Cell::gates_hh,
            int(Cell::bias_ih_cols.size()),
            int(Cell::bias_hh_cols.size()),
            Cell::states,
            Cell::input_grad_col >= 0};
}

}  // namespace rnnkit
