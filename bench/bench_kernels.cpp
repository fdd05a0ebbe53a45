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
#include "kernels/convert.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/weight_matrix.h"

namespace {

ffn::AlignedVector<float> random_buffer(size_t n) {
  ffn::AlignedVector<float> v(n);
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> d(-1, 1);
  for (auto& x : v) x = d(rng);
  return v;
}

// Shapes: TinyLlama-1.1B FFN up projection (5632 x 2048): 46 MB of fp32,
// 12 MB as Q8_0. The last-level cache holds 64-128 MiB, so each benchmark
// cycles through distinct matrices totalling >= 512 MiB: every iteration
// reads its weights from DRAM, as decode of a large model does.
constexpr int64_t kIn = 2048, kOut = 5632;
constexpr uint64_t kWorkingSet = 512ull << 20;
int64_t copies_for(uint64_t bytes) { return int64_t((kWorkingSet + bytes - 1) / bytes); }

// Reads kIn * kOut * 4 bytes (the fp32 matrix) per iteration.
void BM_ReadBandwidth(benchmark::State& state) {
  const int64_t words = kIn * kOut / 2;
  const int64_t copies = copies_for(uint64_t(words) * 8);
  ffn::AlignedVector<uint64_t> w(size_t(words * copies));
  for (size_t i = 0; i < w.size(); ++i) w[i] = i * 0x9e3779b97f4a7c15ull;
  const int threads = static_cast<int>(state.range(0));
  ffn::ThreadPool pool(threads);
  int64_t copy = 0;
  std::vector<uint64_t> partial(threads);
  for (auto _ : state) {
    const uint64_t* base = w.data() + copy * words;
    pool.parallel_for(words, [&](int64_t b, int64_t e, int t) { partial[t] = ffn::sum_words(base + b, e - b); });
    benchmark::DoNotOptimize(partial.data());
    copy = (copy + 1) % copies;
  }
  state.counters["GB/s"] = benchmark::Counter(double(kIn * kOut * 4) * state.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ReadBandwidth)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

// Args: weight type (ggml id), tokens, threads. Weights: distinct
// matrices of the TinyLlama up-projection shape in that type.
void BM_Matmul(benchmark::State& state) {
  const auto type = static_cast<ffn::DType>(state.range(0));
  const int64_t n_tok = state.range(1);
  const int threads = static_cast<int>(state.range(2));
  const uint64_t row_bytes = ffn::dtype_row_bytes(type, kIn), bytes = row_bytes * kOut;
  const int64_t copies = copies_for(bytes);
  ffn::AlignedVector<uint8_t> w(bytes * copies);
  {
    auto rows = random_buffer(size_t(kIn));
    for (int64_t r = 0; r < kOut * copies; ++r) {
      rows[r % kIn] += 0.01f;  // vary the rows cheaply
      ffn::encode_row(type, rows.data(), w.data() + r * row_bytes, kIn);
    }
  }
  ffn::WeightMatrix m{type, kOut, kIn, nullptr, nullptr};
  auto x = random_buffer(size_t(n_tok * kIn));
  std::vector<float> y(size_t(n_tok * kOut));
  ffn::ThreadPool pool(threads);
  int64_t copy = 0;
  for (auto _ : state) {
    m.data = w.data() + copy * bytes;
    ffn::matmul(m, x.data(), n_tok, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
    copy = (copy + 1) % copies;
  }
  state.SetLabel(ffn::dtype_name(type));
  state.counters["GB/s"] = benchmark::Counter(double(bytes) * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n_tok * kIn * kOut * state.iterations() / 1e9,
                                                 benchmark::Counter::kIsRate);
}
void matmul_args(benchmark::internal::Benchmark* b) {
  for (ffn::DType t : {ffn::DType::F32, ffn::DType::F16, ffn::DType::BF16, ffn::DType::Q8_0, ffn::DType::Q4_0}) {
    for (int threads : {1, 2}) b->Args({int64_t(t), 1, threads});
    b->Args({int64_t(t), 64, 2});
  }
}
BENCHMARK(BM_Matmul)->Apply(matmul_args)->UseRealTime()->Unit(benchmark::kMillisecond);

}  // namespace

BENCHMARK_MAIN();
