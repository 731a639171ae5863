// rnnkit: recurrent cells for the CPU, forward and backward through time, in float and double.
//
// This header is the whole public C++ API. It has no Python dependency, so other native code can
// embed the kernels; the Python extension (src/) is one such user.
//
// One call runs one layer in one direction over a whole sequence. Shapes (row-major, contiguous):
//   T = time steps, B = batch, I = input size, H = hidden size; a cell's shape (CellInfo) gives
//   Gi = row blocks of w_ih, Gh = row blocks of w_hh, Bi and Bh = blocks of b_ih and b_hh
//   (RNN 1/1/1/1, LSTM 4/4/4/4, GRU 3/3/3/3, MUT1 2/2/3/0, MUT2 2/3/3/0, MUT3 3/3/3/0)
//   x      [T, B, I]   inputs, time-major (or a table [V, I] read through ids, see SeqArgs)
//   h0, c0 [B, H]      initial states (c0 only for a cell with a cell state: LSTM)
//   w_ih   [Gi*H, I]   input weights, gate blocks stacked in PyTorch's order (LSTM i,f,g,o; GRU r,z,n;
//                      MUT1 z,r; MUT2 z,h; MUT3 z,r,h)
//   w_hh   [Gh*H, H]   recurrent weights (MUT1 r,h; MUT2 and MUT3 z,r,h)
//   b_ih [Bi*H], b_hh [Bh*H]  biases; both null for a layer without bias (the MUT cells have one bias
//                      per gate, z,r,h, passed as b_ih, and b_hh null)
//   lengths [B]        valid steps per batch element, 1..T, or null for all T
//   y      [T, B, H]   outputs: the state after each step, zero past an element's length
#pragma once

#include <cstddef>
#include <cstdint>

namespace rnnkit {

// The cells, in the order of the registry (rnnkit/cells/registry.h) and of the C API's enum rnnkit_cell.
enum class CellId {
    RnnTanh,  // h' = tanh(W_ih x + b_ih + W_hh h + b_hh)
    RnnRelu,  // h' = relu(...)
    Lstm,     // c' = f*c + i*g, h' = o*tanh(c')
    Gru,      // n = tanh(W_in x + b_in + r*(W_hn h + b_hn)); PyTorch/cuDNN "linear before reset"
    GruCho,   // n = tanh(W_in x + b_in + W_hn (r*h) + b_hn); Cho et al. 2014
    Mut1,     // Jozefowicz et al. 2015: z from x alone, tanh(x) in the candidate
    Mut2,     // Jozefowicz et al. 2015: x enters the reset gate directly
    Mut3,     // Jozefowicz et al. 2015: z reads tanh(h)
};
using Mode = CellId;  // the name of CellId before cells had a registry; kept for code that embeds rnnkit

// What a caller needs to know of a cell to shape its arguments.
struct CellInfo {
    const char* name;    // "rnn_tanh", "lstm", "mut1", ...: the name the bindings and the CLIs use
    int gates_ih;        // row blocks of H in w_ih
    int gates_hh;        // row blocks of H in w_hh
    int bias_ih;         // blocks of H in b_ih
    int bias_hh;         // blocks of H in b_hh (0: the cell has one bias vector, b_ih)
    int states;          // 1 (h) or 2 (h and the cell state c)
    bool raw_input;      // x enters the cell directly besides x W_ih^T, so I must equal H
};

constexpr int kNumCells = 8;
bool valid_cell(int id);
// Throws std::invalid_argument for an id outside 0..kNumCells-1.
CellInfo cell_info(CellId cell);
int num_gates(CellId cell);  // gates_ih, for code written when w_ih and w_hh had the same blocks

template <class Real>
struct SeqArgs {
    CellId cell;
    int T, B, I, H;
    const Real* x;
    const Real* h0;
    const Real* c0;               // a cell with a cell state (states == 2) only, else null
    const Real* w_ih;
    const Real* w_hh;
    const Real* b_ih;             // may be null (then b_hh too)
    const Real* b_hh;
    const std::int64_t* lengths;  // may be null
    bool reverse;              // process t = T-1 .. 0; with lengths each element starts at its own last step
    // Embedded input: with ids [T, B] set, x is a table [V, I] and the input of step t, element b is
    // its row ids[t*B + b] (0 <= id < V): an embedding lookup fused with the layer. The projection is
    // then computed for the V rows once and gathered, and backward's dx is the table's gradient [V, I].
    const std::int64_t* ids = nullptr;
    int V = 0;
    // Inference of float only: W_hh is read as IEEE half (rounded to nearest even; W_ih, biases, states
    // and every sum stay float). A batch of one streams its W_hh every step, and half of it is half the
    // bytes; other batches compute on the rounded values at float speed. A value of W_hh of magnitude
    // >= 65520 or a non-finite one has no half: forward throws std::invalid_argument.
    bool half_w_hh = false;
};

// Elements of T that a training forward must be given and that backward reads (and overwrites: it
// turns the stored gate values into gate gradients in place, so one workspace serves one backward).
std::size_t train_workspace_size(CellId cell, int T, int B, int H);

// Sequence forward. y may be null (only the final states wanted). With workspace null it runs in
// inference mode: memory beyond the outputs is O(B*H), independent of T.
template <class T>
void forward(const SeqArgs<T>& a, T* y, T* h_n, T* c_n, T* workspace);

// Backpropagation through time for the forward that filled `workspace` with the same arguments.
// dy [T,B,H], dh_n and dc_n [B,H] (dc_n for a cell with a cell state only, may be null for zeros; dh_n
// may be null too). What backward writes into dx: the gradient w.r.t. the layer's input x [T,B,I], or
// w.r.t. its input projection x W_ih^T [T,B,Gi*H] (dx = that times W_ih, dW_ih = its transpose times x);
// dw_ih is then untouched. A cell that reads x directly (MUT1, MUT2) has a part of dx the projection
// does not carry: Projection throws std::invalid_argument for it.
enum class InputGradient { Input, Projection };

// Writes dx [T,B,I] ([V,I] with ids), dh0 [B,H], dc0 [B,H] (cell state), dw_ih, dw_hh and, when the forward
// had biases, db_ih and db_hh (db_hh: the cells with a b_hh); with `accumulate` the weight and bias gradients are added to what those arrays hold (as a
// training step sums them over layers' calls), which costs nothing extra.
template <class T>
void backward(const SeqArgs<T>& a, T* workspace, const T* dy, const T* dh_n, const T* dc_n,
              T* dx, T* dh0, T* dc0, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh, bool accumulate = false,
              InputGradient input_grad = InputGradient::Input);

// One inference step for sampling and decoding: a.T must be 1, a.x [B,I], a.h0/a.c0 the carried
// state; writes h_out (and c_out with a cell state), which may alias h0/c0. Reuses a per-thread scratch
// buffer, so a decoding loop allocates nothing after its first step.
template <class T>
void step(const SeqArgs<T>& a, T* h_out, T* c_out);

// Threads used by every kernel (OpenMP); the initial value honours OMP_NUM_THREADS. The setting is
// process-wide, whichever thread sets it (as torch.set_num_threads): OpenMP's own omp_set_num_threads
// would reach only the calling thread's later parallel regions. Safe to call while kernels run: each
// kernel reads it once, when it starts.
void set_num_threads(int n);
int get_num_threads();

}  // namespace rnnkit
