// rnnkit._C.pool_forward and pool_backward: the binding of csrc/rnnkit/pooling.h, which rnnkit.pooling
// documents and calls.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <cstdint>
#include <optional>
#include <stdexcept>

#include "binding_checks.h"
#include "buffer_pool.h"
#include "rnnkit/ops/pooling.h"

namespace py = pybind11;
using namespace rnnkit_bindings;
using Lengths = std::optional<Array<std::int64_t>>;
using Index = std::optional<Array<std::int32_t>>;

namespace {

rnnkit::PoolKind pool_kind(int kind) {
    if (kind < 0 || kind > int(rnnkit::PoolKind::Max)) throw py::value_error("unknown pooling kind " + std::to_string(kind));
    return rnnkit::PoolKind(kind);
}

void expect_lengths(const Lengths& lengths, py::ssize_t B) {
    if (lengths) expect_shape("lengths", *lengths, {B});
}

template <class T>
py::tuple forward(int kind, const Array<T>& x, const Lengths& lengths, int split) {
    const auto k = pool_kind(kind);
    if (x.ndim() != 3) throw py::value_error("x must have shape (T, B, F)");
    const py::ssize_t steps = x.shape(0), B = x.shape(1), F = x.shape(2);
    expect_lengths(lengths, B);
    expect_int_sizes({{"T", steps}, {"B", B}, {"F", F}});  // index holds steps as int32
    Array<T> out({B, F});
    Index index;
    if (k != rnnkit::PoolKind::Mean) index = Array<std::int32_t>({B, F});
    T* o = out.mutable_data();
    std::int32_t* ip = index ? index->mutable_data() : nullptr;
    try {
        py::gil_scoped_release release;
        rnnkit::pool_forward<T>(k, int(steps), int(B), int(F), split, x.data(), lengths ? lengths->data() : nullptr, o, ip);
    } catch (const std::invalid_argument& e) {
        throw py::value_error(e.what());
    }
    return py::make_tuple(out, index);
}

template <class T>
Array<T> backward(int kind, int steps, const Lengths& lengths, const Index& index, const Array<T>& dout) {
    const auto k = pool_kind(kind);
    if (dout.ndim() != 2) throw py::value_error("dout must have shape (B, F)");
    const py::ssize_t B = dout.shape(0), F = dout.shape(1);
    expect_lengths(lengths, B);
    if (index) expect_shape("index", *index, {B, F});
    expect_int_sizes({{"B", B}, {"F", F}});
    // dx (steps, B, F) is allocated before the kernel checks its sizes.
    if (steps < 1 || B < 1 || F < 1)
        throw py::value_error("pooling: T, B and F must be at least 1, got T=" + std::to_string(steps) + ", B=" +
                              std::to_string(B) + ", F=" + std::to_string(F));
    Array<T> dx = pooled_array<T>({py::ssize_t(steps), B, F});  // reused memory: no page faults per call
    T* d = dx.mutable_data();
    try {
        py::gil_scoped_release release;
        rnnkit::pool_backward<T>(k, steps, int(B), int(F), lengths ? lengths->data() : nullptr,
                                 index ? index->data() : nullptr, dout.data(), d);
    } catch (const std::invalid_argument& e) {
        throw py::value_error(e.what());
    }
    return dx;
}

template <class T>
void bind(py::module_& m) {
    m.def("pool_forward", &forward<T>, py::arg("kind"), py::arg("x").noconvert(), py::arg("lengths"), py::arg("split"));
    m.def("pool_backward", &backward<T>, py::arg("kind"), py::arg("steps"), py::arg("lengths"), py::arg("index"),
          py::arg("dout").noconvert());
}

}  // namespace

void register_pooling(py::module_& m) {
    bind<float>(m);
    bind<double>(m);
}
