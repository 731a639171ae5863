// What every binding file shares: the array types it accepts and the shape check whose message names
// the argument and both shapes.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <optional>
#include <string>
#include <vector>

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

}  // namespace rnnkit_bindings
