// rnnkit: recurrent cells for the CPU, forward and backward through time, in float and double.
//
// This header is the whole public C++ API. It has no Python dependency, so other native code can
// embed the kernels; the Python extension (src/) is one such user.
//
// One call runs one layer in one direction over a whole sequence. Shapes (row-major, contiguous):
//   T = time steps, B = batch, I = input size, H = hidden size, G = gates (1 RNN, 3 GRU, 4 LSTM)
//   x      [T, B, I]   inputs, time-major (or a table [V, I] read through ids, see SeqArgs)
//   h0, c0 [B, H]      initial states (c0 only for LSTM)
//   w_ih   [G*H, I]    input weights, gate blocks stacked in PyTorch's order (LSTM i,f,g,o; GRU r,z,n)
//   w_hh   [G*H, H]    recurrent weights, same order
//   b_ih, b_hh [G*H]   biases; both null for a layer without bias
//   lengths [B]        valid steps per batch element, 1..T, or null for all T
//   y      [T, B, H]   outputs: the state after each step, zero past an element's length
#pragma once

#include <cstddef>
#include <cstdint>

namespace rnnkit {

enum class Mode {
    RnnTanh,  // h' = tanh(W_ih x + b_ih + W_hh h + b_hh)
    RnnRelu,  // h' = relu(...)
    Lstm,     // c' = f*c + i*g, h' = o*tanh(c')
    Gru,      // n = tanh(W_in x + b_in + r*(W_hn h + b_hn)); PyTorch/cuDNN "linear before reset"
    GruCho,   // n = tanh(W_in x + b_in + W_hn (r*h) + b_hn); Cho et al. 2014
};

int num_gates(Mode mode);

template <class Real>
struct SeqArgs {
    Mode mode;
    int T, B, I, H;
    const Real* x;
    const Real* h0;
    const Real* c0;               // LSTM only, else null
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
};

// Elements of T that a training forward must be given and that backward reads (and overwrites: it
// turns the stored gate values into gate gradients in place, so one workspace serves one backward).
std::size_t train_workspace_size(Mode mode, int T, int B, int H);

// Sequence forward. y may be null (only the final states wanted). With workspace null it runs in
// inference mode: memory beyond the outputs is O(B*H), independent of T.
template <class T>
void forward(const SeqArgs<T>& a, T* y, T* h_n, T* c_n, T* workspace);

// Backpropagation through time for the forward that filled `workspace` with the same arguments.
// dy [T,B,H], dh_n and dc_n [B,H] (dc_n LSTM only, may be null for zeros; dh_n may be null too).
// What backward writes into dx: the gradient w.r.t. the layer's input x [T,B,I], or w.r.t. its input
// projection x W_ih^T [T,B,G*H], for a caller who forms dx and dW_ih from it more cheaply than two GEMMs
// (when x holds embedding rows, a scatter into V rows and two V-row products); dw_ih is then untouched.
enum class InputGradient { Input, Projection };

// Writes dx [T,B,I] ([V,I] with ids), dh0 [B,H], dc0 [B,H] (LSTM), dw_ih, dw_hh and, when the forward had biases, db_ih
// and db_hh; with `accumulate` the weight and bias gradients are added to what those arrays hold (as a
// training step sums them over layers' calls), which costs nothing extra.
template <class T>
void backward(const SeqArgs<T>& a, T* workspace, const T* dy, const T* dh_n, const T* dc_n,
              T* dx, T* dh0, T* dc0, T* dw_ih, T* dw_hh, T* db_ih, T* db_hh, bool accumulate = false,
              InputGradient input_grad = InputGradient::Input);

// One inference step for sampling and decoding: a.T must be 1, a.x [B,I], a.h0/a.c0 the carried
// state; writes h_out (and c_out for LSTM), which may alias h0/c0. Reuses a per-thread scratch
// buffer, so a decoding loop allocates nothing after its first step.
template <class T>
void step(const SeqArgs<T>& a, T* h_out, T* c_out);

// Threads used by every kernel (OpenMP); the initial value honours OMP_NUM_THREADS.
void set_num_threads(int n);
int get_num_threads();

}  // namespace rnnkit
