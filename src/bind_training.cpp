// rnnkit._C.apply_update, sum_of_squares and embedding_backward: the bindings of csrc/rnnkit/optim.h and
// embedding.h, the fused pieces of a training step that rnnkit.optim and rnnkit.nn call. Arrays are
// updated in place, so they must arrive with the exact dtype and C layout (no silent copies).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "binding_checks.h"
#include "rnnkit/embedding.h"
#include "rnnkit/optim.h"

namespace py = pybind11;
using namespace rnnkit_bindings;

namespace {

void expect_same_shape(const char* name, const py::array& a, const py::array& like) {
    expect_shape(name, a, std::vector<py::ssize_t>(like.shape(), like.shape() + like.ndim()));
}

template <class T>
void apply_update(int rule, Array<T> p, const Array<T>& g, Array<T> s1, OptArray<T> s2, double lr, double a,
                  double b, double eps, long step) {
    if (rule < 0 || rule > int(rnnkit::UpdateRule::Adam)) throw py::value_error("unknown rule " + std::to_string(rule));
    expect_same_shape("g", g, p);
    expect_same_shape("s1", s1, p);
    if (s2) expect_same_shape("s2", *s2, p);
    if ((rule == int(rnnkit::UpdateRule::Adam)) != bool(s2)) throw py::value_error("s2 is Adam's second buffer, and only Adam's");
    if (step < 1) throw py::value_error("step counts from 1");
    T* s2p = s2 ? s2->mutable_data() : nullptr;
    T *pp = p.mutable_data(), *s1p = s1.mutable_data();
    const rnnkit::Update u{rnnkit::UpdateRule(rule), lr, a, b, eps, step};
    py::gil_scoped_release release;
    rnnkit::apply_update<T>(u, std::size_t(p.size()), pp, g.data(), s1p, s2p);
}

template <class T>
double sum_of_squares(const Array<T>& x) {
    py::gil_scoped_release release;
    return rnnkit::sum_of_squares<T>(std::size_t(x.size()), x.data());
}

template <class T>
void embedding_backward(Array<T> grad, const py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>& idx,
                        const Array<T>& dout) {
    if (grad.ndim() != 2) throw py::value_error("grad must have shape (V, E)");
    const py::ssize_t V = grad.shape(0), E = grad.shape(1), n = idx.size();
    expect_shape("dout", dout, {n, E});
    const std::int64_t* ip = idx.data();
    for (py::ssize_t r = 0; r < n; ++r)
        if (ip[r] < 0 || ip[r] >= V)
            throw py::value_error("index " + std::to_string(ip[r]) + " outside 0.." + std::to_string(V - 1));
    T* gp = grad.mutable_data();
    py::gil_scoped_release release;
    rnnkit::embedding_backward<T>(std::size_t(n), std::size_t(E), ip, dout.data(), gp);
}

template <class T>
void bind(py::module_& m) {
    m.def("apply_update", &apply_update<T>, py::arg("rule"), py::arg("p").noconvert(), py::arg("g").noconvert(),
          py::arg("s1").noconvert(), py::arg("s2").noconvert(), py::arg("lr"), py::arg("a"), py::arg("b"),
          py::arg("eps"), py::arg("step"));
    m.def("sum_of_squares", &sum_of_squares<T>, py::arg("x").noconvert());
    m.def("embedding_backward", &embedding_backward<T>, py::arg("grad").noconvert(), py::arg("idx"),
          py::arg("dout").noconvert());
}

}  // namespace

void register_training(py::module_& m) {
    bind<float>(m);
    bind<double>(m);
}
