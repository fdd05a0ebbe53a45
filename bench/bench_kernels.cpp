// Kernel benchmarks (Google Benchmark). Each product reports GB/s of weights
// read and GFLOP/s; BM_ReadBandwidth reads a buffer of the same size in the
// same process, the baseline that a bandwidth-bound decode product is
// measured against (ratio = matmul GB/s / read GB/s).
//
//   ./build/bench/ffn_bench_kernels --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <numeric>
#include <random>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "kernels/matmul.h"

namespace {

ffn::AlignedVector<float> random_buffer(size_t n) {
  ffn::AlignedVector<float> v(n);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> d(-1, 1);
  for (auto& x : v) x = d(rng);
  return v;
}

// Shapes: TinyLlama-1.1B FFN up projection (5632 x 2048): 46 MB of fp32
// weights, below this machine's ~64-128 MiB last-level cache only if a
// single one is used, so several distinct matrices are cycled to defeat it.
constexpr int64_t kIn = 2048, kOut = 5632, kCopies = 6;

void BM_ReadBandwidth(benchmark::State& state) {
  auto w = random_buffer(size_t(kIn * kOut * kCopies));
  const int threads = static_cast<int>(state.range(0));
  ffn::ThreadPool pool(threads);
  int64_t copy = 0;
  std::vector<double> partial(threads);
  for (auto _ : state) {
    const float* base = w.data() + copy * kIn * kOut;
    pool.parallel_for(kOut, [&](int64_t b, int64_t e, int t) {
      partial[t] = std::accumulate(base + b * kIn, base + e * kIn, 0.0f);
    });
    benchmark::DoNotOptimize(partial.data());
    copy = (copy + 1) % kCopies;
  }
  state.counters["GB/s"] = benchmark::Counter(double(kIn * kOut * 4) * state.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ReadBandwidth)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

void BM_MatmulF32(benchmark::State& state) {
  const int64_t n_tok = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  auto w = random_buffer(size_t(kIn * kOut * kCopies));
  auto x = random_buffer(size_t(n_tok * kIn));
  std::vector<float> y(size_t(n_tok * kOut));
  ffn::ThreadPool pool(threads);
  int64_t copy = 0;
  for (auto _ : state) {
    ffn::matmul_f32(x.data(), n_tok, kIn, w.data() + copy * kIn * kOut, kOut, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
    copy = (copy + 1) % kCopies;
  }
  state.counters["GB/s"] = benchmark::Counter(double(kIn * kOut * 4) * state.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n_tok * kIn * kOut * state.iterations() / 1e9,
                                                 benchmark::Counter::kIsRate);
}
BENCHMARK(BM_MatmulF32)
    ->Args({1, 1})->Args({1, 2})->Args({16, 2})->Args({64, 2})
    ->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
