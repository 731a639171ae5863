// Every cell family, and the one switch from a run-time Mode to its cell type.
#pragma once

#include <stdexcept>

#include "gru_cell.h"
#include "lstm_cell.h"
#include "rnn_cell.h"
#include "rnnkit.h"

namespace rnnkit {

// Calls f with a value of the cell type of `mode` (its static members and templates carry the cell).
template <class F>
decltype(auto) with_cell(Mode mode, F&& f) {
    switch (mode) {
        case Mode::RnnTanh: return f(RnnCell<false>{});
        case Mode::RnnRelu: return f(RnnCell<true>{});
        case Mode::Lstm: return f(LstmCell{});
        case Mode::Gru: return f(GruCell{});
        case Mode::GruCho: return f(GruChoCell{});
    }
    throw std::invalid_argument("unknown rnnkit::Mode");
}

}  // namespace rnnkit
