// How should rnnkit's large products (a layer's input projection X W_ih^T, its weight gradient dG^T X and
// its input gradient dG W_ih) escape OPENBLAS_CORETYPE? Times them, one thread, float32, at the LSTM
// sizes of the speed grid, with OpenBLAS sgemm (whatever core type the environment gives it) against
// rnnkit's packed register-blocked kernel (AVX-512 here), its packing (and for dG^T X the transpose of
// dG) counted in its time. Build and run all core types: bash bench/scripts/coretype_choice.sh
#include <cblas.h>
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>
#include "rnnkit/gemm/packed_gemm.h"
using Clock = std::chrono::steady_clock;
template <class F> double best(F&& f, int reps) { double b = 1e30; f(); for (int r = 0; r < reps; ++r) { auto t0 = Clock::now(); f(); b = std::min(b, std::chrono::duration<double>(Clock::now() - t0).count()); } return b; }
int main() {
    scipy_openblas_set_num_threads(1);
    std::printf("OpenBLAS core type: %s\n", scipy_openblas_get_corename());
    std::mt19937 rng(0); std::uniform_real_distribution<float> u(-0.1f, 0.1f);
    struct S { int TB, N, I; const char* name; } shapes[] = {
        {128 * 32, 4 * 128, 128, "LSTM B128 T32 H128"}, {64 * 100, 4 * 512, 512, "LSTM B64 T100 H512"},
        {16 * 32, 4 * 1024, 1024, "LSTM B16 T32 H1024"}, {128 * 32, 4 * 1024, 1024, "LSTM B128 T32 H1024"}};
    std::printf("%-22s %-10s %10s %10s %7s\n", "shape", "product", "blas GF/s", "packed GF/s", "ratio");
    for (auto s : shapes) {
        std::vector<float> x(size_t(s.TB) * s.I), w(size_t(s.N) * s.I), g(size_t(s.TB) * s.N), c(size_t(s.TB) * s.N),
            dw(size_t(s.N) * s.I), dx(size_t(s.TB) * s.I), gt(size_t(s.TB) * s.N),
            pk(size_t(std::max(rnnkit::panels_of(s.N) * s.I, rnnkit::panels_of(s.I) * std::max(s.TB, s.N))) * 16);
        for (auto* v : {&x, &w, &g}) for (float& e : *v) e = u(rng);
        const double fl = 2.0 * s.TB * s.N * s.I;
        // 1. gates = X W_ih^T
        double tb = best([&] { scipy_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, s.TB, s.N, s.I, 1.f, x.data(), s.I, w.data(), s.I, 0.f, c.data(), s.N); }, 3);
        double tp = best([&] { rnnkit::pack_panels<float>(s.N, s.I, w.data(), s.I, 1, pk.data()); rnnkit::packed_gemm<float>(s.TB, s.N, s.I, x.data(), s.I, pk.data(), false, c.data(), s.N); }, 3);
        std::printf("%-22s %-10s %10.1f %10.1f %6.2fx\n", s.name, "X W^T", fl / tb / 1e9, fl / tp / 1e9, tb / tp);
        // 2. dW_ih = dG^T X
        tb = best([&] { scipy_cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, s.N, s.I, s.TB, 1.f, g.data(), s.N, x.data(), s.I, 0.f, dw.data(), s.I); }, 3);
        tp = best([&] {
            for (int r = 0; r < s.TB; ++r) for (int j = 0; j < s.N; ++j) gt[size_t(j) * s.TB + r] = g[size_t(r) * s.N + j];
            rnnkit::pack_panels<float>(s.I, s.TB, x.data(), 1, s.I, pk.data());
            rnnkit::packed_gemm<float>(s.N, s.I, s.TB, gt.data(), s.TB, pk.data(), false, dw.data(), s.I); }, 3);
        std::printf("%-22s %-10s %10.1f %10.1f %6.2fx\n", s.name, "dG^T X", fl / tb / 1e9, fl / tp / 1e9, tb / tp);
        // 3. dX = dG W_ih
        tb = best([&] { scipy_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, s.TB, s.I, s.N, 1.f, g.data(), s.N, w.data(), s.I, 0.f, dx.data(), s.I); }, 3);
        tp = best([&] { rnnkit::pack_panels<float>(s.I, s.N, w.data(), 1, s.I, pk.data()); rnnkit::packed_gemm<float>(s.TB, s.I, s.N, g.data(), s.N, pk.data(), false, dx.data(), s.I); }, 3);
        std::printf("%-22s %-10s %10.1f %10.1f %6.2fx\n", s.name, "dG W", fl / tb / 1e9, fl / tp / 1e9, tb / tp);
    }
}
