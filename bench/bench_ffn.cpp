// FFN-level decode benchmarks (Google Benchmark): one token through a dense
// gated FFN and through mixtures of experts that split the same weights
// (TinyLlama shape: d 2048, hidden 5632), reporting GB/s of weights read.
// Each iteration runs a different copy of the layer (>= 512 MiB in total,
// above the last-level cache) and a different token, as decode does.
//
//   ./build/bench/ffn_bench_ffn --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <memory>
#include <random>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "ffn/gated_ffn.h"
#include "ffn/moe_ffn.h"
#include "kernels/convert.h"

namespace {

constexpr int64_t kDim = 2048, kHidden = 5632;
constexpr uint64_t kWorkingSet = 512ull << 20;

ffn::WeightMatrix random_weight(ffn::DType type, int64_t rows, int64_t cols, uint64_t seed) {
  ffn::WeightMatrix w{.type = type, .rows = rows, .cols = cols};
  auto buf = std::make_shared<ffn::AlignedVector<uint8_t>>(w.bytes());
  // A cheap generator: the values do not change the speed, and hundreds of
  // MiB of normal samples would take longer than the measurement.
  uint64_t state = seed * 0x9e3779b97f4a7c15ull + 1;
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t r = 0; r < rows; ++r) {
    for (auto& v : row) {
      state = state * 6364136223846793005ull + 1442695040888963407ull;
      v = float(int32_t(state >> 32)) * (0.02f / 2147483648.0f);
    }
    ffn::encode_row(type, row.data(), buf->data() + r * w.row_bytes(), uint64_t(cols));
  }
  w.data = buf->data();
  w.owned = buf;
  return w;
}

std::vector<ffn::Tensor> random_tokens(int n) {
  std::vector<ffn::Tensor> xs;
  std::mt19937 rng(7);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (int i = 0; i < n; ++i) {
    ffn::Tensor x(1, kDim);
    for (auto& v : x.data) v = nd(rng);
    xs.push_back(std::move(x));
  }
  return xs;
}

template <typename Layer>
void run_layers(benchmark::State& state, const std::vector<std::unique_ptr<Layer>>& layers, uint64_t bytes_per_call,
                int threads) {
  ffn::ThreadPool pool(threads);
  const auto xs = random_tokens(64);
  ffn::Scratch scratch;
  ffn::Tensor y;
  size_t i = 0;
  for (auto _ : state) {
    layers[i % layers.size()]->forward(xs[i % xs.size()], y, scratch, pool);
    benchmark::DoNotOptimize(y.data.data());
    ++i;
  }
  state.counters["GB/s"] =
      benchmark::Counter(double(bytes_per_call) * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}

// Args: weight type (ggml id), threads.
void BM_DenseFfnDecode(benchmark::State& state) {
  const auto type = static_cast<ffn::DType>(state.range(0));
  std::vector<std::unique_ptr<ffn::GatedFfn>> layers;
  const uint64_t layer_bytes = 3 * ffn::dtype_row_bytes(type, kDim) * kHidden;
  for (uint64_t total = 0, s = 1; total < kWorkingSet; total += layer_bytes, s += 3)
    layers.push_back(std::make_unique<ffn::GatedFfn>(random_weight(type, kHidden, kDim, s),
                                                     random_weight(type, kHidden, kDim, s + 1),
                                                     random_weight(type, kDim, kHidden, s + 2)));
  state.SetLabel(ffn::dtype_name(type));
  run_layers(state, layers, layers[0]->weight_bytes_per_token(), int(state.range(1)));
}
BENCHMARK(BM_DenseFfnDecode)
    ->Args({int64_t(ffn::DType::Q8_0), 2})
    ->Args({int64_t(ffn::DType::BF16), 2})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

std::unique_ptr<ffn::MoeFfn> random_moe(ffn::DType type, int64_t E, int64_t k, int64_t n_zero, uint64_t seed,
                                        ffn::MoeMeter* meter) {
  const int64_t h = kHidden / E;
  ffn::MoeWeights w;
  w.n_experts = E;
  w.expert_hidden = h;
  w.n_zero = n_zero;
  w.router = random_weight(ffn::DType::F32, E + n_zero, kDim, seed);
  w.gate_exps = random_weight(type, E * h, kDim, seed + 1);
  w.up_exps = random_weight(type, E * h, kDim, seed + 2);
  w.down_exps = random_weight(type, E * kDim, h, seed + 3);
  return std::make_unique<ffn::MoeFfn>(
      std::move(w), ffn::MoeRouting{k, ffn::MoeGating::Softmax, ffn::MoeOrder::SoftmaxThenTopK, true}, meter);
}

// Args: weight type, experts, top_k, threads. The dense FFN's neurons split
// into `experts` experts of kHidden / experts; softmax routing over a random
// router, so tokens pick varying experts.
void BM_MoeFfnDecode(benchmark::State& state) {
  const auto type = static_cast<ffn::DType>(state.range(0));
  const int64_t E = state.range(1), k = state.range(2), h = kHidden / E;
  std::vector<std::unique_ptr<ffn::MoeFfn>> layers;
  const uint64_t layer_bytes = 3 * ffn::dtype_row_bytes(type, kDim) * uint64_t(E * h);
  for (uint64_t total = 0, s = 1; total < kWorkingSet; total += layer_bytes, s += 4)
    layers.push_back(random_moe(type, E, k, 0, s, nullptr));
  state.SetLabel(ffn::dtype_name(type));
  run_layers(state, layers, layers[0]->weight_bytes_per_token(), int(state.range(3)));
}
BENCHMARK(BM_MoeFfnDecode)
    ->Args({int64_t(ffn::DType::Q8_0), 16, 4, 2})
    ->Args({int64_t(ffn::DType::BF16), 16, 4, 2})
    ->Args({int64_t(ffn::DType::Q8_0), 8, 2, 2})
    ->UseRealTime()
    ->Unit(benchmark::kMicrosecond);

// MoE++ zero experts: args zero experts, threads; 16 FFN experts, top-4,
// Q8_0. With a random router a slot goes to a zero expert with probability
// zero / (16 + zero), and the time per token should follow the FFN experts
// actually run (counter "ffn_experts"), not top_k.
void BM_MoeZeroExpertsDecode(benchmark::State& state) {
  const int64_t E = 16, k = 4, zero = state.range(0);
  ffn::MoeMeter meter;
  std::vector<std::unique_ptr<ffn::MoeFfn>> layers;
  const uint64_t layer_bytes = 3 * ffn::dtype_row_bytes(ffn::DType::Q8_0, kDim) * uint64_t(kHidden);
  for (uint64_t total = 0, s = 1; total < kWorkingSet; total += layer_bytes, s += 4)
    layers.push_back(random_moe(ffn::DType::Q8_0, E, k, zero, s, &meter));
  run_layers(state, layers, layers[0]->weight_bytes_per_token(), int(state.range(1)));
  state.counters["ffn_experts"] = meter.ffn_experts_per_token();
  state.counters.erase("GB/s");  // bytes per call vary with the routing
}
BENCHMARK(BM_MoeZeroExpertsDecode)->Args({0, 2})->Args({16, 2})->Args({48, 2})->UseRealTime()->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
