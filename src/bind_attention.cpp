// rnnkit._C.attention_forward / attention_backward: the binding of csrc/rnnkit/ops/attention.h. It checks
// shapes and dtypes, releases the GIL and calls the kernels; rnnkit/attention.py is the documented API.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "binding_checks.h"
#include "rnnkit/ops/attention.h"

namespace py = pybind11;
using rnnkit::AttentionKind;
using namespace rnnkit_bindings;

namespace {

using Mask = std::optional<py::array_t<bool, py::array::c_style>>;

// Checks every array against queries and keys and returns the C++ arguments.
template <class T>
rnnkit::AttentionArgs<T> attention_args(int kind, const Array<T>& queries, const Array<T>& keys,
                                        const OptArray<T>& weight, const OptArray<T>& w_query,
                                        const OptArray<T>& w_key, const OptArray<T>& v, const Mask& mask) {
    if (kind < 0 || kind > int(AttentionKind::Additive)) throw py::value_error("unknown kind " + std::to_string(kind));
    const AttentionKind k = AttentionKind(kind);
    if (queries.ndim() != 3) throw py::value_error("queries must have shape (B, T, Hq)");
    if (keys.ndim() != 3) throw py::value_error("keys must have shape (B, N, Hk)");
    const py::ssize_t B = queries.shape(0), Tq = queries.shape(1), Hq = queries.shape(2);
    const py::ssize_t N = keys.shape(1), Hk = keys.shape(2);
    if (B < 1 || Tq < 1 || N < 1 || Hq < 1 || Hk < 1) throw py::value_error("B, T, N, Hq and Hk must be at least 1");
    expect_shape("keys", keys, {B, N, Hk});
    py::ssize_t A = 0;
    if (k == AttentionKind::Dot && Hq != Hk) throw py::value_error("dot attention needs Hq == Hk");
    if (k == AttentionKind::General) {
        if (!weight) throw py::value_error("general attention needs weight");
        expect_shape("weight", *weight, {Hq, Hk});
    }
    if (k == AttentionKind::Additive) {
        if (!w_query || !w_key || !v) throw py::value_error("additive attention needs w_query, w_key and v");
        if (v->ndim() != 1 || v->shape(0) < 1) throw py::value_error("v must have shape (A,) with A >= 1");
        A = v->shape(0);
        expect_shape("w_query", *w_query, {A, Hq});
        expect_shape("w_key", *w_key, {A, Hk});
    }
    if (mask) expect_shape("mask", *mask, {B, N});
    return {k, int(B), int(Tq), int(N), int(Hq), int(Hk), int(A), queries.data(), keys.data(),
            k == AttentionKind::General ? weight->data() : nullptr,
            k == AttentionKind::Additive ? w_query->data() : nullptr,
            k == AttentionKind::Additive ? w_key->data() : nullptr,
            k == AttentionKind::Additive ? v->data() : nullptr, mask ? mask->data() : nullptr};
}

template <class T>
py::tuple forward(int kind, const Array<T>& queries, const Array<T>& keys, const OptArray<T>& weight,
                  const OptArray<T>& w_query, const OptArray<T>& w_key, const OptArray<T>& v, const Mask& mask,
                  bool training) {
    const auto a = attention_args(kind, queries, keys, weight, w_query, w_key, v, mask);
    Array<T> context({a.B, a.T, a.Hk}), weights({a.B, a.T, a.N});
    OptArray<T> ws;
    if (training) ws = Array<T>(py::ssize_t(rnnkit::attention_workspace_size(a)));
    T* c_p = context.mutable_data();
    T* w_p = weights.mutable_data();
    T* ws_p = ws ? ws->mutable_data() : nullptr;
    try {
        py::gil_scoped_release release;
        rnnkit::attention_forward<T>(a, c_p, w_p, ws_p);
    } catch (const std::invalid_argument& e) {
        throw py::value_error(e.what());
    }
    return py::make_tuple(context, weights, ws);
}

template <class T>
py::tuple backward(int kind, const Array<T>& queries, const Array<T>& keys, const OptArray<T>& weight,
                   const OptArray<T>& w_query, const OptArray<T>& w_key, const OptArray<T>& v, const Mask& mask,
                   const Array<T>& workspace, const Array<T>& dcontext, const OptArray<T>& dweights) {
    const auto a = attention_args(kind, queries, keys, weight, w_query, w_key, v, mask);
    expect_shape("workspace", workspace, {py::ssize_t(rnnkit::attention_workspace_size(a))});
    expect_shape("dcontext", dcontext, {a.B, a.T, a.Hk});
    if (dweights) expect_shape("dweights", *dweights, {a.B, a.T, a.N});
    Array<T> dq({a.B, a.T, a.Hq}), dk({a.B, a.N, a.Hk});
    OptArray<T> dweight, dw_query, dw_key, dv;
    if (a.kind == AttentionKind::General) dweight = Array<T>({a.Hq, a.Hk});
    if (a.kind == AttentionKind::Additive) {
        dw_query = Array<T>({a.A, a.Hq});
        dw_key = Array<T>({a.A, a.Hk});
        dv = Array<T>(py::ssize_t(a.A));
    }
    auto out = [](OptArray<T>& x) { return x ? x->mutable_data() : nullptr; };
    T *dq_p = dq.mutable_data(), *dk_p = dk.mutable_data(), *dw_p = out(dweight), *dwq_p = out(dw_query),
      *dwk_p = out(dw_key), *dv_p = out(dv);
    try {
        py::gil_scoped_release release;
        rnnkit::attention_backward<T>(a, workspace.data(), dcontext.data(), ptr(dweights), dq_p, dk_p, dw_p, dwq_p,
                                      dwk_p, dv_p);
    } catch (const std::invalid_argument& e) {
        throw py::value_error(e.what());
    }
    return py::make_tuple(dq, dk, dweight, dw_query, dw_key, dv);
}

template <class T>
void bind(py::module_& m) {
    m.def("attention_forward", &forward<T>, py::arg("kind"), py::arg("queries"), py::arg("keys"), py::arg("weight"),
          py::arg("w_query"), py::arg("w_key"), py::arg("v"), py::arg("mask"), py::arg("training"));
    m.def("attention_backward", &backward<T>, py::arg("kind"), py::arg("queries"), py::arg("keys"),
          py::arg("weight"), py::arg("w_query"), py::arg("w_key"), py::arg("v"), py::arg("mask"),
          py::arg("workspace").noconvert(), py::arg("dcontext"), py::arg("dweights"));
}

}  // namespace

void register_attention(py::module_& m) {
    // One overload per dtype: arrays of one exact dtype (what rnnkit.attention passes) reach their own
    // instantiation untouched.
    bind<float>(m);
    bind<double>(m);
}
