// Publishes the C API table (rnnkit/c_api.h) as the capsule rnnkit._C._C_API, the way NumPy publishes
// its C API: extensions (rnnkit/capi.pxd for Cython) call the kernels through it without linking.
#include <pybind11/pybind11.h>

#include "rnnkit/c_api.h"

namespace py = pybind11;

void register_capi(py::module_& m) {
    static const rnnkit_api table = {
        RNNKIT_C_API_VERSION, rnnkit_train_workspace_size, rnnkit_forward_f32, rnnkit_forward_f64,
        rnnkit_backward_f32, rnnkit_backward_f64, rnnkit_step_f32, rnnkit_step_f64, rnnkit_error_message,
        rnnkit_forward_half_w_hh_f32,
    };
    m.attr("_C_API") = py::capsule(&table, "rnnkit._C._C_API");
}
