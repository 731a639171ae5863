// rnnkit._C.linear_forward and linear_backward: the binding of csrc/rnnkit/ops/linear.h, which rnnkit.nn.Linear
// calls. Arrays updated in place must arrive with the exact dtype and C layout (no silent copies).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>

#include "binding_checks.h"
#include "buffer_pool.h"
#include "rnnkit/ops/linear.h"

namespace py = pybind11;
using namespace rnnkit_bindings;

namespace {

template <class T>
void expect_weight(const Array<T>& x, const Array<T>& w, const OptArray<T>& b) {
    if (x.ndim() != 2) throw py::value_error("x must have shape (N, in_features)");
    if (w.ndim() != 2) throw py::value_error("weight must have shape (out_features, in_features)");
    expect_shape("weight", w, {w.shape(0), x.shape(1)});
    if (b) expect_shape("bias", *b, {w.shape(0)});
}

template <class T>
Array<T> linear_forward(const Array<T>& x, const Array<T>& w, const OptArray<T>& b) {
    expect_weight(x, w, b);
    const py::ssize_t N = x.shape(0), I = x.shape(1), O = w.shape(0);
    Array<T> y = pooled_array<T>({N, O});
    T* yp = y.mutable_data();
    py::gil_scoped_release release;
    rnnkit::linear_forward<T>(int(N), int(I), int(O), x.data(), w.data(), ptr(b), yp);
    return y;
}

template <class T>
std::optional<Array<T>> linear_backward(const Array<T>& dy, const Array<T>& x, const Array<T>& w, Array<T> dw,
                                        OptArray<T> db, bool input_grad) {
    expect_weight<T>(x, w, std::nullopt);
    const py::ssize_t N = x.shape(0), I = x.shape(1), O = w.shape(0);
    expect_shape("dy", dy, {N, O});
    expect_shape("dw", dw, {O, I});
    if (db) expect_shape("db", *db, {O});
    std::optional<Array<T>> dx;
    if (input_grad) dx = pooled_array<T>({N, I});
    T* dxp = dx ? dx->mutable_data() : nullptr;
    T* dwp = dw.mutable_data();
    T* dbp = db ? db->mutable_data() : nullptr;
    py::gil_scoped_release release;
    rnnkit::linear_backward<T>(int(N), int(I), int(O), x.data(), w.data(), dy.data(), dxp, dwp, dbp);
    return dx;
}

template <class T>
void bind(py::module_& m) {
    m.def("linear_forward", &linear_forward<T>, py::arg("x").noconvert(), py::arg("weight").noconvert(),
          py::arg("bias").noconvert());
    m.def("linear_backward", &linear_backward<T>, py::arg("dy").noconvert(), py::arg("x").noconvert(),
          py::arg("weight").noconvert(), py::arg("dw").noconvert(), py::arg("db").noconvert(),
          py::arg("input_grad"));
}

}  // namespace

void register_linear(py::module_& m) {
    bind<float>(m);
    bind<double>(m);
}
