// rnnkit._C: the pybind11 binding of csrc/rnnkit. It checks what the C++ API cannot (shapes, dtypes,
// contiguity), releases the GIL, and calls the kernels; rnnkit/kernels.py is the documented API over it.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <algorithm>
#include <optional>
#include <string>
#include <vector>

#include "binding_checks.h"
#include "buffer_pool.h"
#include "rnnkit/rnnkit.h"

namespace py = pybind11;
using rnnkit::CellId;
using namespace rnnkit_bindings;

namespace {

// Checks every array of one layer's call against x and w_hh and returns the C++ arguments.
template <class T>
rnnkit::SeqArgs<T> seq_args(int cell_id, const Array<T>& x, const Array<T>& h0, const OptArray<T>& c0,
                            const Array<T>& w_ih, const Array<T>& w_hh, const OptArray<T>& b_ih,
                            const OptArray<T>& b_hh, const std::optional<Array<std::int64_t>>& lengths,
                            bool reverse, const std::optional<Array<std::int64_t>>& ids = std::nullopt) {
    const rnnkit::CellInfo cell = checked_cell(cell_id);
    if (ids ? ids->ndim() != 2 || x.ndim() != 2 : x.ndim() != 3)
        throw py::value_error(ids ? "with ids (T, B), x must be a table (V, I)" : "x must have shape (T, B, I)");
    if (w_hh.ndim() != 2) throw py::value_error("w_hh must have shape (Gh*H, H)");
    const py::ssize_t steps = ids ? ids->shape(0) : x.shape(0), B = ids ? ids->shape(1) : x.shape(1),
                      I = x.shape(x.ndim() - 1), H = w_hh.shape(1), V = ids ? x.shape(0) : 0;
    if (ids) {
        if (V < 1) throw py::value_error("the table x must have at least one row");
        const std::int64_t* ip = ids->data();
        for (py::ssize_t r = 0; r < steps * B; ++r)
            if (ip[r] < 0 || ip[r] >= V)
                throw py::value_error("ids must lie in 0.." + std::to_string(V - 1) + ", got " + std::to_string(ip[r]));
    }
    expect_int_sizes({{"T", steps}, {"B", B}, {"I", I}, {"H", H}, {"V", V}, {"T*B", steps * B},
                      {"G*H", py::ssize_t(std::max(cell.gates_ih, cell.gates_hh)) * H}});
    // I = 0 would reach the BLAS as a leading dimension of 0 (illegal: it leaves y unwritten).
    if (steps < 1 || B < 1 || H < 1 || I < 1)
        throw py::value_error("T, B, I and H must be at least 1, got T=" + std::to_string(steps) + ", B=" +
                              std::to_string(B) + ", I=" + std::to_string(I) + ", H=" + std::to_string(H));
    check_layer_weights<T>(cell, I, H, w_ih, w_hh, b_ih, b_hh);
    expect_shape("h0", h0, {B, H});
    if (cell.states == 2) {
        if (!c0) throw py::value_error(std::string("c0 is required for ") + cell.name);
        expect_shape("c0", *c0, {B, H});
    }
    if (lengths) {
        expect_shape("lengths", *lengths, {B});
        for (py::ssize_t b = 0; b < B; ++b)
            if (lengths->data()[b] < 1 || lengths->data()[b] > steps)
                throw py::value_error("lengths must lie in 1..T");
    }
    return {CellId(cell_id), int(steps), int(B), int(I), int(H), x.data(), h0.data(), cell.states == 2 ? c0->data() : nullptr,
            w_ih.data(), w_hh.data(), ptr(b_ih), ptr(b_hh), lengths ? lengths->data() : nullptr, reverse,
            ids ? ids->data() : nullptr, int(V)};
}

template <class T>
py::tuple forward(int cell_id, const Array<T>& x, const Array<T>& h0, const OptArray<T>& c0, const Array<T>& w_ih,
                  const Array<T>& w_hh, const OptArray<T>& b_ih, const OptArray<T>& b_hh,
                  const std::optional<Array<std::int64_t>>& lengths, bool reverse, bool training,
                  const std::optional<Array<std::int64_t>>& ids, bool half_w_hh) {
    auto a = seq_args(cell_id, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, reverse, ids);
    a.half_w_hh = half_w_hh;
    Array<T> y = pooled_array<T>({a.T, a.B, a.H}), h_n({a.B, a.H});
    OptArray<T> c_n;
    const rnnkit::CellInfo cell = rnnkit::cell_info(a.cell);
    if (cell.states == 2) c_n = Array<T>({a.B, a.H});
    OptArray<T> ws;
    if (training) ws = pooled_array<T>({py::ssize_t(rnnkit::train_workspace_size(a.cell, a.T, a.B, a.H))});
    T* y_p = y.mutable_data();
    T* h_p = h_n.mutable_data();
    T* c_p = c_n ? c_n->mutable_data() : nullptr;
    T* ws_p = ws ? ws->mutable_data() : nullptr;
    {
        py::gil_scoped_release release;
        rnnkit::forward<T>(a, y_p, h_p, c_p, ws_p);
    }
    return py::make_tuple(y, h_n, c_n, ws);
}

template <class T>
py::tuple backward(int cell_id, const Array<T>& x, const Array<T>& h0, const OptArray<T>& c0, const Array<T>& w_ih,
                   const Array<T>& w_hh, const OptArray<T>& b_ih, const OptArray<T>& b_hh,
                   const std::optional<Array<std::int64_t>>& lengths, bool reverse, Array<T>& ws,
                   const Array<T>& dy, const OptArray<T>& dh_n, const OptArray<T>& dc_n, OptArray<T> into_w_ih,
                   OptArray<T> into_w_hh, OptArray<T> into_b_ih, OptArray<T> into_b_hh, bool projection_grad,
                   const std::optional<Array<std::int64_t>>& ids) {
    const auto a = seq_args(cell_id, x, h0, c0, w_ih, w_hh, b_ih, b_hh, lengths, reverse, ids);
    expect_shape("workspace", ws, {py::ssize_t(rnnkit::train_workspace_size(a.cell, a.T, a.B, a.H))});
    expect_shape("dy", dy, {a.T, a.B, a.H});
    if (dh_n) expect_shape("dh_n", *dh_n, {a.B, a.H});
    if (dc_n) expect_shape("dc_n", *dc_n, {a.B, a.H});
    const rnnkit::CellInfo cell = rnnkit::cell_info(a.cell);
    const py::ssize_t GH = cell.gates_ih * a.H, GhH = cell.gates_hh * a.H, Bi = cell.bias_ih * a.H,
                      Bh = cell.bias_hh * a.H;
    // Given arrays to add the weight gradients to (all of them, biases only with a bias), else fresh ones.
    const bool accumulate = bool(into_w_ih);
    if (accumulate) {
        if (!into_w_hh || bool(into_b_ih) != bool(a.b_ih) || bool(into_b_hh) != bool(a.b_hh))
            throw py::value_error("accumulating needs every weight gradient array (biases exactly when the layer has them)");
        expect_shape("dw_ih", *into_w_ih, {GH, py::ssize_t(a.I)});
        expect_shape("dw_hh", *into_w_hh, {GhH, py::ssize_t(a.H)});
        if (a.b_ih) expect_shape("db_ih", *into_b_ih, {Bi});
        if (a.b_hh) expect_shape("db_hh", *into_b_hh, {Bh});
    }
    // dx: in x's shape (an embedded input's table: (V, I)), or the projection's (T, B, G*H).
    Array<T> dx = projection_grad ? pooled_array<T>({a.T, a.B, GH})
                  : ids           ? pooled_array<T>({a.V, a.I})
                                  : pooled_array<T>({a.T, a.B, a.I});
    Array<T> dh0({a.B, a.H});
    OptArray<T> dw_ih;
    if (accumulate)
        dw_ih = *into_w_ih;
    else if (!projection_grad)
        dw_ih = pooled_array<T>({GH, py::ssize_t(a.I)});
    Array<T> dw_hh = accumulate ? *into_w_hh : pooled_array<T>({GhH, py::ssize_t(a.H)});
    OptArray<T> dc0, db_ih, db_hh;
    if (cell.states == 2) dc0 = Array<T>({a.B, a.H});
    if (a.b_ih) db_ih = accumulate ? *into_b_ih : Array<T>(Bi);
    if (a.b_hh) db_hh = accumulate ? *into_b_hh : Array<T>(Bh);
    T *dx_p = dx.mutable_data(), *dh0_p = dh0.mutable_data(), *dwi_p = dw_ih ? dw_ih->mutable_data() : nullptr,
      *dwh_p = dw_hh.mutable_data();
    T* dc0_p = dc0 ? dc0->mutable_data() : nullptr;
    T* dbi_p = db_ih ? db_ih->mutable_data() : nullptr;
    T* dbh_p = db_hh ? db_hh->mutable_data() : nullptr;
    T* ws_p = ws.mutable_data();
    try {
        py::gil_scoped_release release;
        rnnkit::backward<T>(a, ws_p, dy.data(), ptr(dh_n), ptr(dc_n), dx_p, dh0_p, dc0_p, dwi_p, dwh_p, dbi_p,
                            dbh_p, accumulate,
                            projection_grad ? rnnkit::InputGradient::Projection : rnnkit::InputGradient::Input);
    } catch (const std::invalid_argument& e) {
        throw py::value_error(e.what());
    }
    // dw_ih is not computed for a projection gradient, so it is None then (even when accumulating).
    return py::make_tuple(dx, dh0, dc0, projection_grad ? OptArray<T>() : dw_ih, dw_hh, db_ih, db_hh);
}

template <class T>
void step(int cell_id, const Array<T>& x, const Array<T>& h, const OptArray<T>& c, const Array<T>& w_ih,
          const Array<T>& w_hh, const OptArray<T>& b_ih, const OptArray<T>& b_hh, Array<T>& h_out,
          OptArray<T>& c_out) {
    if (x.ndim() != 2) throw py::value_error("x must have shape (B, I)");
    const Array<T> x3({py::ssize_t(1), x.shape(0), x.shape(1)}, x.data(), x);  // a view, no copy
    const auto a = seq_args(cell_id, x3, h, c, w_ih, w_hh, b_ih, b_hh, std::nullopt, false);
    expect_shape("h_out", h_out, {a.B, a.H});
    if (rnnkit::cell_info(a.cell).states == 2) {
        if (!c_out) throw py::value_error("c_out is required for a cell with a cell state");
        expect_shape("c_out", *c_out, {a.B, a.H});
    }
    T* h_p = h_out.mutable_data();
    T* c_p = c_out ? c_out->mutable_data() : nullptr;
    py::gil_scoped_release release;
    rnnkit::step<T>(a, h_p, c_p);
}

template <class T>
void bind_dtype(py::module_& m) {
    m.def("forward", &forward<T>, py::arg("cell"), py::arg("x"), py::arg("h0"), py::arg("c0"), py::arg("w_ih"),
          py::arg("w_hh"), py::arg("b_ih"), py::arg("b_hh"), py::arg("lengths"), py::arg("reverse"),
          py::arg("training"), py::arg("ids") = py::none(), py::arg("half_w_hh") = false);
    m.def("backward", &backward<T>, py::arg("cell"), py::arg("x"), py::arg("h0"), py::arg("c0"), py::arg("w_ih"),
          py::arg("w_hh"), py::arg("b_ih"), py::arg("b_hh"), py::arg("lengths"), py::arg("reverse"),
          py::arg("workspace").noconvert(), py::arg("dy"), py::arg("dh_n"), py::arg("dc_n"),
          py::arg("into_w_ih").noconvert() = py::none(), py::arg("into_w_hh").noconvert() = py::none(),
          py::arg("into_b_ih").noconvert() = py::none(), py::arg("into_b_hh").noconvert() = py::none(),
          py::arg("projection_grad") = false, py::arg("ids") = py::none());
    m.def("step", &step<T>, py::arg("cell"), py::arg("x"), py::arg("h"), py::arg("c"), py::arg("w_ih"),
          py::arg("w_hh"), py::arg("b_ih"), py::arg("b_hh"), py::arg("h_out").noconvert(),
          py::arg("c_out").noconvert());
}

}  // namespace

void register_sampling(py::module_& m);
void register_capi(py::module_& m);
void register_attention(py::module_& m);
void register_training(py::module_& m);
void register_linear(py::module_& m);
void register_pooling(py::module_& m);
void register_info(py::module_& m);

PYBIND11_MODULE(_C, m) {
    m.doc() = "rnnkit's C++ kernels (use rnnkit.kernels, which documents and checks the arguments)";
    // One overload per dtype: pybind11 first tries every overload without conversion, so arrays of one
    // exact dtype (what rnnkit.kernels passes) reach their own instantiation untouched.
    bind_dtype<float>(m);
    bind_dtype<double>(m);
    m.def("set_num_threads", &rnnkit::set_num_threads, py::arg("n"));
    m.def("get_num_threads", &rnnkit::get_num_threads);
    m.def("empty_cache", &pool_clear);
    m.def("train_workspace_size", [](int cell, int T, int B, int H) {
        checked_cell(cell);
        return rnnkit::train_workspace_size(CellId(cell), T, B, H);
    });
    // The registry of cells (csrc/rnnkit/cells/registry.h), in id order: rnnkit._cells builds Python's from it.
    m.def("cells", [] {
        py::list out;
        for (int id = 0; id < rnnkit::kNumCells; ++id) {
            const rnnkit::CellInfo c = rnnkit::cell_info(CellId(id));
            out.append(py::dict(py::arg("id") = id, py::arg("name") = c.name, py::arg("gates_ih") = c.gates_ih,
                                py::arg("gates_hh") = c.gates_hh, py::arg("bias_ih") = c.bias_ih,
                                py::arg("bias_hh") = c.bias_hh, py::arg("states") = c.states,
                                py::arg("raw_input") = c.raw_input));
        }
        return out;
    });
    register_sampling(m);
    register_capi(m);
    register_attention(m);
    register_training(m);
    register_linear(m);
    register_pooling(m);
    register_info(m);
}
