// What every binding file shares: the array types it accepts and the shape check whose message names
// the argument and both shapes.
#pragma once

#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <climits>
#include <initializer_list>
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

// The kernels take sizes as int and hand sizes and products of them (rows T*B, G*H, ...) to a BLAS with
// 32-bit integers: a request whose sizes do not fit is refused here, naming them, before any allocation.
// Each size comes from an existing array and products of two of them are formed here in 64 bits.
struct NamedSize {
    const char* name;
    py::ssize_t value;
};

inline void expect_int_sizes(std::initializer_list<NamedSize> sizes) {
    std::string all;
    bool too_large = false;
    for (const auto& s : sizes) {
        all += std::string(all.empty() ? "" : ", ") + s.name + "=" + std::to_string(s.value);
        too_large = too_large || s.value > INT_MAX;
    }
    if (too_large)
        throw py::value_error("sizes too large for the kernels (each at most 2^31-1 = " + std::to_string(INT_MAX) +
                              "): " + all);
}

template <class T>
const T* ptr(const OptArray<T>& a) { return a ? a->data() : nullptr; }

}  // namespace rnnkit_bindings
