// The public entry points of rnnkit.h: pick the cell of a CellId and instantiate float and double.
#include "rnnkit/cells/registry.h"
#include "rnnkit/loop/sequence.h"

namespace rnnkit {

int choose_threads(int B, int H, int I, int G) {
    // A step smaller than this many multiply-adds is over before a second thread would have
    // synchronised with the first.
    const double step_work = double(B) * G * H * (H + I);
    if (step_work < 65536.0) return 1;
    return std::max(1, std::min(get_num_threads(), (H + 15) / 16));
}

bool valid_cell(int id) { return id >= 0 && id < kNumCells; }

CellInfo cell_info(CellId cell) {
    return with_cell(cell, [](auto c) { return info_of<decltype(c)>(); });
}

int num_gates(CellId cell) { return cell_info(cell).gates_ih; }

std::size_t train_workspace_size(CellId cell, int T, int B, int H) {
    return with_cell(cell, [&](auto c) { return workspace_elements<decltype(c)>(T, B, H); });
}

template <class T>
void forward(const SeqArgs<T>& a, T* y, T* h_n, T* c_n, T* workspace) {
    AlignedBuffer<T> scratch;
    with_cell(a.cell, [&](auto cell) { run_forward<decltype(cell)>(a, y, h_n, c_n, workspace, scratch); });
}

template <class T>
void backward(const SeqArgs<T>& a, T* workspace, const T* dy, const T* dh_n, const T* dc_n, T* dx, T* dh0,
              T* dc0, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh, bool accumulate, InputGradient input_grad) {
    with_cell(a.cell, [&](auto cell) {
        run_backward<decltype(cell)>(a, workspace, dy, dh_n, dc_n, dx, dh0, dc0, dw_ih, dw_hh, db_ih, db_hh,
                                     accumulate, input_grad);
    });
}

template <class T>
void step(const SeqArgs<T>& a, T* h_out, T* c_out) {
    if (a.T != 1) throw std::invalid_argument("rnnkit::step takes exactly one time step (T == 1)");
    thread_local AlignedBuffer<T> scratch;
    with_cell(a.cell, [&](auto cell) { run_forward<decltype(cell), T>(a, nullptr, h_out, c_out, nullptr, scratch); });
}

template void forward<float>(const SeqArgs<float>&, float*, float*, float*, float*);
template void forward<double>(const SeqArgs<double>&, double*, double*, double*, double*);
template void backward<float>(const SeqArgs<float>&, float*, const float*, const float*, const float*, float*,
                              float*, float*, float*, float*, float*, float*, bool, InputGradient);
template void backward<double>(const SeqArgs<double>&, double*, const double*, const double*, const double*,
                               double*, double*, double*, double*, double*, double*, double*, bool, InputGradient);
template void step<float>(const SeqArgs<float>&, float*, float*);
template void step<double>(const SeqArgs<double>&, double*, double*);

}  // namespace rnnkit
