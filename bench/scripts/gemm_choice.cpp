// Which GEMM for the recurrent step? Times, for the step shapes of an LSTM (C[B, 4H] = h[B, H] W_hh^T),
// OpenBLAS sgemm (scipy-openblas32) called on the unpacked weights, as a per-step BLAS call would, against
// rnnkit's packed kernel on weights packed once; plus a large sgemm for the machine's peak. One thread.
// Build and run: bash bench/gemm_choice.sh
#include <cblas.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <random>
#include <vector>

#include "rnnkit/gemm/packed_gemm.h"

using Clock = std::chrono::steady_clock;

template <class F>
double best_seconds(F&& f, int reps) {
    double best = 1e30;
    for (int r = 0; r < reps; ++r) {
        auto t0 = Clock::now();
        f();
        best = std::min(best, std::chrono::duration<double>(Clock::now() - t0).count());
    }
    return best;
}

int main() {
    scipy_openblas_set_num_threads(1);
    std::mt19937 rng(0);
    std::uniform_real_distribution<float> u(-0.1f, 0.1f);
    {
        const int n = 2048;
        std::vector<float> a(n * n), c(n * n);
        for (float& v : a) v = u(rng);
        double s = best_seconds([&] { scipy_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1.f, a.data(), n, a.data(), n, 0.f, c.data(), n); }, 3);
        std::printf("peak: sgemm %dx%dx%d, 1 thread: %.1f GFLOP/s\n\n", n, n, n, 2.0 * n * n * n / s / 1e9);
    }
    std::printf("%5s %5s | %12s %12s | %s\n", "B", "H", "openblas GF/s", "packed GF/s", "packed / openblas");
    const int Bs[] = {1, 4, 16, 32, 64, 128};
    const int Hs[] = {128, 256, 512, 1024};
    for (int H : Hs)
        for (int B : Bs) {
            const int N = 4 * H, K = H, steps = 16;
            std::vector<float> h(B * K), w(N * K), c(B * N), packed(rnnkit::panels_of(N) * rnnkit::kPanel * K);
            for (float& v : h) v = u(rng);
            for (float& v : w) v = u(rng);
            auto blas = [&] {
                for (int s = 0; s < steps; ++s)
                    scipy_cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, B, N, K, 1.f, h.data(), K, w.data(), K, 1.f, c.data(), N);
            };
            auto mine = [&] {
                rnnkit::pack_panels<float>(N, K, w.data(), K, 1, packed.data());  // once per sequence
                for (int s = 0; s < steps; ++s) rnnkit::packed_gemm<float>(B, N, K, h.data(), K, packed.data(), true, c.data(), N);
            };
            const double flop = 2.0 * B * N * K * steps;
            const double tb = best_seconds(blas, 5), tp = best_seconds(mine, 5);
            std::printf("%5d %5d | %12.1f %12.1f | %.2fx\n", B, H, flop / tb / 1e9, flop / tp / 1e9, tb / tp);
        }
}
