// rnnkit._C.apply_update, sum_of_squares, embedding_backward and output_loss: the bindings of
// csrc/rnnkit/ops/optim.h, embedding.h and output_loss.h, the
// fused pieces of a training step that rnnkit.optim, rnnkit.nn, rnnkit.losses and rnnkit.charlm call.
// Arrays updated in place must arrive with the exact dtype and C layout (no silent copies).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <string>
#include <vector>

#include "binding_checks.h"
#include "buffer_pool.h"
#include "rnnkit/ops/embedding.h"
#include "rnnkit/ops/optim.h"
#include "rnnkit/ops/output_loss.h"

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

using Ids = py::array_t<std::int64_t, py::array::c_style | py::array::forcecast>;

template <class T>
void embedding_backward(Array<T> grad, const Ids& idx, const Array<T>& dout) {
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
py::tuple output_loss(const Array<T>& x, const Array<T>& w, const OptArray<T>& b, const Ids& targets,
                      const std::optional<py::array_t<T, py::array::c_style | py::array::forcecast>>& weights,
                      OptArray<T> dw, OptArray<T> db) {
    if (x.ndim() != 2) throw py::value_error("x must have shape (N, I)");
    if (w.ndim() != 2) throw py::value_error("weight must have shape (V, I)");
    const py::ssize_t N = x.shape(0), I = x.shape(1), V = w.shape(0);
    if (N < 1) throw py::value_error("x needs at least one row");
    expect_shape("weight", w, {V, I});
    if (b) expect_shape("bias", *b, {V});
    expect_shape("targets", targets, {N});
    if (weights) expect_shape("weights", *weights, {N});
    if (dw) expect_shape("dw", *dw, {V, I});
    if (db) expect_shape("db", *db, {V});
    if (bool(db) && !dw) throw py::value_error("db needs dw");
    const std::int64_t* t = targets.data();
    for (py::ssize_t n = 0; n < N; ++n)
        if (t[n] < 0 || t[n] >= V)
            throw py::value_error("target " + std::to_string(t[n]) + " outside 0.." + std::to_string(V - 1));
    double total = 0.0;
    if (weights)
        for (py::ssize_t n = 0; n < N; ++n) {
            if (!(weights->data()[n] >= 0)) throw py::value_error("weights must be non-negative");
            total += double(weights->data()[n]);
        }
    if (weights && !(total > 0)) throw py::value_error("weights must not all be zero");
    const rnnkit::OutputLossArgs<T> a{int(N), int(I), int(V), x.data(), w.data(), ptr(b), t,
                                      weights ? weights->data() : nullptr};
    Array<T> logits = pooled_array<T>({N, V});
    OptArray<T> dx;
    if (dw) dx = pooled_array<T>({N, I});
    T *z = logits.mutable_data(), *dx_p = dx ? dx->mutable_data() : nullptr, *dw_p = dw ? dw->mutable_data() : nullptr,
      *db_p = db ? db->mutable_data() : nullptr;
    double loss;
    {
        py::gil_scoped_release release;
        loss = rnnkit::output_loss<T>(a, z, dx_p, dw_p, db_p);
    }
    return py::make_tuple(loss, dx);
}

template <class T>
void bind(py::module_& m) {
    m.def("apply_update", &apply_update<T>, py::arg("rule"), py::arg("p").noconvert(), py::arg("g").noconvert(),
          py::arg("s1").noconvert(), py::arg("s2").noconvert(), py::arg("lr"), py::arg("a"), py::arg("b"),
          py::arg("eps"), py::arg("step"));
    m.def("sum_of_squares", &sum_of_squares<T>, py::arg("x").noconvert());
    m.def("embedding_backward", &embedding_backward<T>, py::arg("grad").noconvert(), py::arg("idx"),
          py::arg("dout").noconvert());
    m.def("output_loss", &output_loss<T>, py::arg("x").noconvert(), py::arg("weight").noconvert(),
          py::arg("bias").noconvert(), py::arg("targets"), py::arg("weights"), py::arg("dw").noconvert(),
          py::arg("db").noconvert());
}

}  // namespace

void register_training(py::module_& m) {
    bind<float>(m);
    bind<double>(m);
}
