// What every binding file shares: the array types it accepts and the shape check whose message names
// the argument and both shapes.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <optional>
#include <string>
#include <vector>

#include "rnnkit/rnnkit.h"

namespace rnnkit_bindings {

namespace py = pybind11;

template <class T>
using Array = py::array_t<T, py::array::c_style>;

template <class T>
using OptArray = std::optional<Array<T>>;

inline std::string shape_str(const std::vector<py::ssize_t>& s) {
    std::string r = "(";
    for (std::size_t i = 0; i < s.size(); ++i) r += (i ? ", " : "") + std::to_string(s[i]);
    return r + (s.size() == 1 ? ",)" : ")");
}

inline void expect_shape(const char* name, const py::array& a, const std::vector<py::ssize_t>& shape) {
    std::vector<py::ssize_t> got(a.shape(), a.shape() + a.ndim());
    if (got != shape)
        throw py::value_error(std::string(name) + " must have shape " + shape_str(shape) + ", got " + shape_str(got));
}

template <class T>
const T* ptr(const OptArray<T>& a) { return a ? a->data() : nullptr; }

// The cell of an id from Python, or ValueError.
inline rnnkit::CellInfo checked_cell(int id) {
    if (!rnnkit::valid_cell(id)) throw py::value_error("unknown cell id " + std::to_string(id));
    return rnnkit::cell_info(rnnkit::CellId(id));
}

// One layer's weights against its cell's shapes (rnnkit.h) for input size I and hidden size H.
template <class T>
void check_layer_weights(const rnnkit::CellInfo& cell, py::ssize_t I, py::ssize_t H, const Array<T>& w_ih,
                         const Array<T>& w_hh, const OptArray<T>& b_ih, const OptArray<T>& b_hh) {
    expect_shape("w_hh", w_hh, {cell.gates_hh * H, H});
    expect_shape("w_ih", w_ih, {cell.gates_ih * H, I});
    if (cell.bias_hh == 0 && b_hh)
        throw py::value_error(std::string("b_hh must be None for ") + cell.name + " (its one bias is b_ih)");
    if (cell.bias_hh > 0 && bool(b_ih) != bool(b_hh))
        throw py::value_error("b_ih and b_hh must both be given or both be None");
    if (b_ih) expect_shape("b_ih", *b_ih, {cell.bias_ih * H});
    if (b_hh) expect_shape("b_hh", *b_hh, {cell.bias_hh * H});
    if (cell.raw_input && I != H)
        throw py::value_error(std::string(cell.name) + " reads x directly, so its input size must equal hidden size; got " +
                              std::to_string(I) + " and " + std::to_string(H));
}

}  // namespace rnnkit_bindings
