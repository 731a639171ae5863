// rnnkit._C.sample and rnnkit._C.score: the bindings of csrc/rnnkit/ops/sampling.h. They check shapes and
// dtypes, then run the whole loop with the GIL released; rnnkit.charlm.CharLM.sample and
// CharLM.evaluate_as_sampled are the documented API.
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "binding_checks.h"
#include "rnnkit/ops/sampling.h"

namespace py = pybind11;
using namespace rnnkit_bindings;

namespace {

// The CharModel over the arrays (which must outlive it), checked against each other.
template <class T>
rnnkit::CharModel<T> model_of(int cell_id, const std::optional<Array<T>>& embed, const std::vector<Array<T>>& w_ih,
                              const std::vector<Array<T>>& w_hh, const std::vector<std::optional<Array<T>>>& b_ih,
                              const std::vector<std::optional<Array<T>>>& b_hh, const Array<T>& w_out,
                              const std::optional<Array<T>>& b_out) {
    const rnnkit::CellInfo cell = checked_cell(cell_id);
    const auto L = w_ih.size();
    if (L < 1 || w_hh.size() != L || b_ih.size() != L || b_hh.size() != L)
        throw py::value_error("w_ih, w_hh, b_ih and b_hh need one entry per layer (at least one)");
    if (w_out.ndim() != 2) throw py::value_error("w_out must have shape (V, H)");
    rnnkit::CharModel<T> m;
    m.cell = rnnkit::CellId(cell_id);
    m.V = int(w_out.shape(0));
    m.H = int(w_out.shape(1));
    const py::ssize_t V = m.V, H = m.H;
    if (embed) {
        if (embed->ndim() != 2) throw py::value_error("embed must have shape (V, E)");
        m.E = int(embed->shape(1));
        expect_shape("embed", *embed, {V, py::ssize_t(m.E)});
    } else {
        m.E = m.V;
    }
    m.embed = embed ? embed->data() : nullptr;
    for (std::size_t l = 0; l < L; ++l) {
        check_layer_weights<T>(cell, l == 0 ? py::ssize_t(m.E) : H, H, w_ih[l], w_hh[l], b_ih[l], b_hh[l]);
        m.w_ih.push_back(w_ih[l].data());
        m.w_hh.push_back(w_hh[l].data());
        m.b_ih.push_back(b_ih[l] ? b_ih[l]->data() : nullptr);
        m.b_hh.push_back(b_hh[l] ? b_hh[l]->data() : nullptr);
    }
    m.w_out = w_out.data();
    if (b_out) expect_shape("b_out", *b_out, {V});
    m.b_out = b_out ? b_out->data() : nullptr;
    return m;
}

rnnkit::WeightStorage storage_of(const std::string& weights) {
    if (weights == "float16") return rnnkit::WeightStorage::Float16;
    if (weights == "int8") return rnnkit::WeightStorage::Int8;
    if (weights != "float32")
        throw py::value_error("weights must be 'float32', 'float16' or 'int8', got '" + weights + "'");
    return rnnkit::WeightStorage::Float32;
}

template <class T>
Array<std::int32_t> sample(int cell_id, const std::optional<Array<T>>& embed, const std::vector<Array<T>>& w_ih,
                           const std::vector<Array<T>>& w_hh, const std::vector<std::optional<Array<T>>>& b_ih,
                           const std::vector<std::optional<Array<T>>>& b_hh, const Array<T>& w_out,
                           const std::optional<Array<T>>& b_out, const Array<std::int32_t>& prime, int length,
                           double temperature, int top_k, std::uint64_t seed, int exclude,
                           const std::string& weights) {
    const rnnkit::CharModel<T> m = model_of(cell_id, embed, w_ih, w_hh, b_ih, b_hh, w_out, b_out);
    if (prime.ndim() != 1) throw py::value_error("prime must be a 1-D array of symbols");
    if (length < 0) throw py::value_error("length must be >= 0");
    rnnkit::SampleOptions opt;
    opt.temperature = temperature;
    opt.top_k = top_k;
    opt.seed = seed;
    opt.exclude = exclude;
    opt.weights = storage_of(weights);
    Array<std::int32_t> out(py::ssize_t{length});
    std::int32_t* out_p = out.mutable_data();
    const int n_prime = int(prime.shape(0));
    try {
        py::gil_scoped_release release;
        rnnkit::sample<T>(m, prime.data(), n_prime, length, opt, out_p);
    } catch (const std::invalid_argument& e) {
        throw py::value_error(e.what());
    }
    return out;
}

template <class T>
double score(int cell_id, const std::optional<Array<T>>& embed, const std::vector<Array<T>>& w_ih,
             const std::vector<Array<T>>& w_hh, const std::vector<std::optional<Array<T>>>& b_ih,
             const std::vector<std::optional<Array<T>>>& b_hh, const Array<T>& w_out,
             const std::optional<Array<T>>& b_out, const Array<std::int32_t>& ids, const std::string& weights,
             std::optional<Array<T>> state) {
    const rnnkit::CharModel<T> m = model_of(cell_id, embed, w_ih, w_hh, b_ih, b_hh, w_out, b_out);
    if (ids.ndim() != 1) throw py::value_error("ids must be a 1-D array of symbols");
    if (ids.shape(0) > std::numeric_limits<int>::max()) throw py::value_error("ids has more than 2^31 - 1 symbols");
    const rnnkit::WeightStorage storage = storage_of(weights);
    if (state)
        expect_shape("state", *state,
                     {py::ssize_t(m.w_ih.size()) * m.H * rnnkit::cell_info(m.cell).states});
    T* state_p = state ? state->mutable_data() : nullptr;
    try {
        py::gil_scoped_release release;
        return rnnkit::score<T>(m, ids.data(), int(ids.shape(0)), storage, state_p);
    } catch (const std::invalid_argument& e) {
        throw py::value_error(e.what());
    }
}

template <class T>
void bind(py::module_& m) {
    m.def("sample", &sample<T>, py::arg("cell"), py::arg("embed"), py::arg("w_ih"), py::arg("w_hh"),
          py::arg("b_ih"), py::arg("b_hh"), py::arg("w_out"), py::arg("b_out"), py::arg("prime"),
          py::arg("length"), py::arg("temperature"), py::arg("top_k"), py::arg("seed"), py::arg("exclude"),
          py::arg("weights") = "float32");
    m.def("score", &score<T>, py::arg("cell"), py::arg("embed"), py::arg("w_ih"), py::arg("w_hh"),
          py::arg("b_ih"), py::arg("b_hh"), py::arg("w_out"), py::arg("b_out"), py::arg("ids"),
          py::arg("weights") = "float32", py::arg("state") = py::none());
}

}  // namespace

void register_sampling(py::module_& m) {
    // Arrays of one exact dtype (what rnnkit.charlm passes) reach their own instantiation.
    bind<float>(m);
    bind<double>(m);
}
