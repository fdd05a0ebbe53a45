// Kernel benchmarks (Google Benchmark). Each product reports GB/s of weights
// read and GFLOP/s; BM_ReadBandwidth reads a buffer of the same size in the
// same process, the baseline that a bandwidth-bound decode product is
// measured against (ratio = matmul GB/s / read GB/s).
//
//   ./build/bench/ffn_bench_kernels --benchmark_counters_tabular=true
#include <benchmark/benchmark.h>

#include <algorithm>
#include <array>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <numeric>
#include <random>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "ffn/sparse_activations.h"
#include "kernels/amx_packed.h"
#include "kernels/attention_head.h"
#include "kernels/convert.h"
#include "kernels/gather_rows_q8.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/packed_bf16.h"
#include "kernels/packed_quant.h"
#include "kernels/row_placement.h"
#include "kernels/matmul_quant.h"
#include "kernels/group_prefetch.h"
#include "kernels/neuron_rows.h"
#include "kernels/sparse_input_q8.h"
#include "kernels/sparse_matmul.h"
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
// 12 MB as Q8_0. The last-level cache holds 64-260 MiB on the VMs seen, so
// each benchmark cycles through distinct matrices totalling >= 1 GiB: every
// iteration reads its weights from DRAM, as decode of a large model does.
// FFN_BENCH_WORKING_SET_MIB=1 instead keeps one copy (in L2/L3): the
// kernels' compute ceiling, without DRAM.
constexpr int64_t kIn = 2048, kOut = 5632;
uint64_t working_set_bytes() {
  const char* mib = std::getenv("FFN_BENCH_WORKING_SET_MIB");
  return (mib ? std::strtoull(mib, nullptr, 10) : 1024ull) << 20;
}
int64_t copies_for(uint64_t bytes) { return std::max<int64_t>(1, int64_t((working_set_bytes() + bytes - 1) / bytes)); }

// n words of non-constant values in 2 MiB pages, as `ffn bench`'s probe and
// the model's re-laid weights are.
std::shared_ptr<uint64_t> read_buffer(size_t n) {
  const std::shared_ptr<uint8_t> bytes = ffn::weight_allocation(n * sizeof(uint64_t));
  std::shared_ptr<uint64_t> w(bytes, reinterpret_cast<uint64_t*>(bytes.get()));
  for (size_t i = 0; i < n; ++i) w.get()[i] = i * 0x9e3779b97f4a7c15ull;
  return w;
}

// Reads kIn * kOut * 4 bytes (the fp32 matrix) per iteration.
void BM_ReadBandwidth(benchmark::State& state) {
  const int64_t words = kIn * kOut / 2;
  const int64_t copies = copies_for(uint64_t(words) * 8);
  const std::shared_ptr<uint64_t> w = read_buffer(size_t(words * copies));
  const int threads = static_cast<int>(state.range(0));
  ffn::ThreadPool pool(threads);
  int64_t copy = 0;
  std::vector<uint64_t> partial(threads);
  for (auto _ : state) {
    const uint64_t* base = w.get() + copy * words;
    pool.parallel_for(words, [&](int64_t b, int64_t e, int t) { partial[t] = ffn::sum_words(base + b, e - b); });
    benchmark::DoNotOptimize(partial.data());
    copy = (copy + 1) % copies;
  }
  state.counters["GB/s"] = benchmark::Counter(double(kIn * kOut * 4) * state.iterations() / 1e9,
                                              benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ReadBandwidth)->Arg(1)->Arg(2)->UseRealTime()->Unit(benchmark::kMillisecond);

// Args: weight type (ggml id), tokens, threads, layout (0: the file's row
// order, 1: packed row tiles as models load Q8_0/Q4_0/BF16,
// kernels/packed_quant.h).
// Weights: distinct matrices of the TinyLlama up-projection shape in that type.
void BM_Matmul(benchmark::State& state) {
  const auto type = static_cast<ffn::DType>(state.range(0));
  const int64_t n_tok = state.range(1);
  const int threads = static_cast<int>(state.range(2));
  const bool packed = state.range(3) != 0;
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
  ffn::ThreadPool pool(threads);
  std::vector<ffn::WeightMatrix> mats;
  for (int64_t c = 0; c < copies; ++c) {
    mats.push_back({.type = type, .rows = kOut, .cols = kIn, .data = w.data() + c * bytes});
    if (packed) ffn::pack_row_tiles(mats.back(), &pool);
  }
  if (packed && !mats[0].packed) {
    state.SkipWithError("packed layout needs Q8_0/Q4_0 weights and AVX-512 BW, or BF16/F16 and AVX-512 BF16");
    return;
  }
  auto x = random_buffer(size_t(n_tok * kIn));
  std::vector<float> y(size_t(n_tok * kOut));
  int64_t copy = 0;
  for (auto _ : state) {
    ffn::matmul(mats[size_t(copy)], x.data(), n_tok, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
    copy = (copy + 1) % copies;
  }
  state.SetLabel(std::string(ffn::dtype_name(type)) + (packed ? " packed" : ""));
  state.counters["GB/s"] = benchmark::Counter(double(bytes) * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] = benchmark::Counter(2.0 * n_tok * kIn * kOut * state.iterations() / 1e9,
                                                 benchmark::Counter::kIsRate);
}
void matmul_args(benchmark::internal::Benchmark* b) {
  for (ffn::DType t : {ffn::DType::F32, ffn::DType::F16, ffn::DType::BF16, ffn::DType::Q8_0, ffn::DType::Q4_0})
    for (int64_t packed : {0, 1}) {
      const bool packable = t != ffn::DType::F32;
      if (packed && !packable) continue;
      for (int threads : {1, 2}) b->Args({int64_t(t), 1, threads, packed});
      b->Args({int64_t(t), 64, 2, packed});
    }
}
BENCHMARK(BM_Matmul)->Apply(matmul_args)->UseRealTime()->Unit(benchmark::kMillisecond);

// Seconds spent in call(0, i) and in call(1, i), alternating call by call
// (i counts the calls): the prefetch benchmarks' A/B, in one process so
// that the machine's drift hits both sides alike.
template <typename Call>
std::array<double, 2> alternating_seconds(benchmark::State& state, Call call) {
  std::array<double, 2> seconds{0, 0};
  int64_t i = 0;
  for (auto _ : state)
    for (int side : {0, 1}) {
      const auto start = std::chrono::steady_clock::now();
      call(side, i++);
      seconds[size_t(side)] += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    }
  return seconds;
}

// The counters of an A/B from alternating_seconds: each side's rate of
// `per_call` units (GB, GFLOP) per call, named a_rate and b_rate, and their
// ratio (B's speed over A's).
void report_alternating(benchmark::State& state, const std::array<double, 2>& seconds, double per_call,
                        const char* a_rate, const char* b_rate) {
  const double total = per_call * double(state.iterations());
  state.counters[a_rate] = total / seconds[0];
  state.counters[b_rate] = total / seconds[1];
  state.counters["ratio"] = seconds[0] / seconds[1];
}

// Copies of one kOut x kIn matrix of `type` in the packed tile layout
// (kernels/packed_quant.h), enough of them to cycle through the working set
// (at least 2, so that an A/B pair never reads the same copy twice in a
// row). Null, with the benchmark skipped, where the CPU lacks the layout.
struct PackedCopies {
  uint64_t bytes = 0;  // of one copy
  ffn::AlignedVector<uint8_t> file;  // the copies in their file layout
  std::vector<ffn::WeightMatrix> mats;
  const ffn::WeightMatrix& operator[](int64_t i) const { return mats[size_t(i % int64_t(mats.size()))]; }
};
std::unique_ptr<PackedCopies> packed_copies(benchmark::State& state, ffn::DType type, ffn::ThreadPool& pool) {
  auto c = std::make_unique<PackedCopies>();
  c->bytes = ffn::dtype_row_bytes(type, kIn) * kOut;
  const int64_t copies = std::max<int64_t>(2, copies_for(c->bytes));
  c->file.resize(c->bytes * copies);
  const auto values = random_buffer(size_t(kIn * 64));
  for (int64_t r = 0; r < kOut * copies; ++r)
    ffn::encode_row(type, values.data() + (r % 64) * kIn, c->file.data() + r * (c->bytes / kOut), kIn);
  for (int64_t i = 0; i < copies; ++i) {
    c->mats.push_back({.type = type, .rows = kOut, .cols = kIn, .data = c->file.data() + i * c->bytes});
    ffn::pack_row_tiles(c->mats.back(), &pool);
  }
  if (!c->mats[0].packed) {
    state.SkipWithError("packed layout needs Q8_0/Q4_0 weights and AVX-512 BW, or BF16/F16 and AVX-512 BF16");
    return nullptr;
  }
  return c;
}

// One-token packed products with and without the tile kernels' software
// prefetch (kernels/packed_quant.h), alternating call by call in one
// process, so that the machine's drift hits both alike. Reports GB/s of
// each and their ratio (prefetch / none). Args: weight type, threads,
// prefetch distance in bytes (0: none against none, the control for the
// order of the two calls).
void BM_PackedPrefetch(benchmark::State& state) {
  const auto type = static_cast<ffn::DType>(state.range(0));
  const int threads = static_cast<int>(state.range(1));
  const int64_t distance = state.range(2);
  ffn::ThreadPool pool(threads);
  const auto w = packed_copies(state, type, pool);
  if (!w) return;
  const auto x = random_buffer(size_t(kIn));
  std::vector<float> y(static_cast<size_t>(kOut));
  const auto seconds = alternating_seconds(state, [&](int with, int64_t i) {
    ffn::override_packed_prefetch_bytes(with ? distance : 0);
    ffn::matmul((*w)[i], x.data(), 1, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
  });
  ffn::override_packed_prefetch_bytes(-1);
  state.SetLabel(ffn::dtype_name(type));
  report_alternating(state, seconds, double(w->bytes) / 1e9, "none_GB/s", "prefetch_GB/s");
}
BENCHMARK(BM_PackedPrefetch)
    ->ArgsProduct({{int64_t(ffn::DType::Q8_0), int64_t(ffn::DType::Q4_0), int64_t(ffn::DType::BF16)}, {1, 2}, {0, 1024, 2048}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// Is the one-token packed product at the memory's rate? The product and a
// plain read of the same packed bytes (sum_words, nothing computed, the
// threads splitting it in halves), alternating call by call in one process.
// The 1 GiB read probe (BM_ReadBandwidth, `ffn bench`) streams longer than
// one matrix and is measured seconds apart, while this VM's bandwidth moves
// by tens of percent within minutes; this ratio is immune to both. Reports
// GB/s of each and their ratio (product / read). Args: weight type, threads.
void BM_PackedVsRead(benchmark::State& state) {
  const auto type = static_cast<ffn::DType>(state.range(0));
  const int threads = static_cast<int>(state.range(1));
  ffn::ThreadPool pool(threads);
  const auto w = packed_copies(state, type, pool);
  if (!w) return;
  const auto x = random_buffer(size_t(kIn));
  std::vector<float> y(static_cast<size_t>(kOut));
  std::vector<uint64_t> partial(static_cast<size_t>(threads));
  const auto words = int64_t(w->bytes / 8);
  const auto seconds = alternating_seconds(state, [&](int product, int64_t i) {
    if (product) {
      ffn::matmul((*w)[i], x.data(), 1, y.data(), pool);
      benchmark::DoNotOptimize(y.data());
      return;
    }
    const auto* base = reinterpret_cast<const uint64_t*>((*w)[i].packed);
    pool.parallel_for(words,
                      [&](int64_t b, int64_t e, int t) { partial[size_t(t)] = ffn::sum_words(base + b, e - b); });
    benchmark::DoNotOptimize(partial.data());
  });
  state.SetLabel(ffn::dtype_name(type));
  report_alternating(state, seconds, double(w->bytes) / 1e9, "read_GB/s", "product_GB/s");
}
BENCHMARK(BM_PackedVsRead)
    ->ArgsProduct({{int64_t(ffn::DType::Q8_0), int64_t(ffn::DType::Q4_0), int64_t(ffn::DType::BF16),
                    int64_t(ffn::DType::F16)},
                   {1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// Prefill-sized packed products on one thread, AMX tiles against the
// AVX-512 tiles (kernels/amx_packed.h), alternating call by call in one
// process. One matrix (the up-projection shape) that stays in cache: prefill
// is bound by compute, not by memory. Reports GFLOP/s of each and their
// ratio (AMX / AVX-512). Args: weight type, tokens.
void BM_PackedAmx(benchmark::State& state) {
  const auto type = static_cast<ffn::DType>(state.range(0));
  const int64_t n_tok = state.range(1);
  if (!ffn::amx_in_use()) {
    const std::string why = "AMX not used here: " + ffn::amx_support().reason;
    state.SkipWithError(why.c_str());
    return;
  }
  const uint64_t row_bytes = ffn::dtype_row_bytes(type, kIn);
  ffn::AlignedVector<uint8_t> w(row_bytes * kOut);
  const auto values = random_buffer(size_t(kIn * 64));
  for (int64_t r = 0; r < kOut; ++r) ffn::encode_row(type, values.data() + (r % 64) * kIn, w.data() + r * row_bytes, kIn);
  ffn::WeightMatrix m{.type = type, .rows = kOut, .cols = kIn, .data = w.data()};
  ffn::pack_row_tiles(m, nullptr);
  const auto x = random_buffer(size_t(n_tok * kIn));
  ffn::QuantizedActivations xa;
  xa.quantize(x.data(), n_tok, kIn);
  xa.bf16.resize(x.size());
  ffn::round_to_bf16(x.data(), int64_t(x.size()), xa.bf16.data());
  std::vector<float> y(size_t(n_tok * kOut));
  const auto seconds = alternating_seconds(state, [&](int amx, int64_t) {
    ffn::matmul_packed_rows(m, xa, n_tok, y.data(), kOut, 0, kOut, amx ? ffn::QuantPath::Amx : ffn::QuantPath::Vnni);
    benchmark::DoNotOptimize(y.data());
  });
  state.SetLabel(ffn::dtype_name(type));
  report_alternating(state, seconds, 2.0 * double(n_tok * kIn * kOut) / 1e9, "avx512_GFLOP/s", "amx_GFLOP/s");
}
BENCHMARK(BM_PackedAmx)
    ->ArgsProduct({{int64_t(ffn::DType::Q8_0), int64_t(ffn::DType::Q4_0), int64_t(ffn::DType::BF16)}, {16, 32, 64, 128}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// The read bandwidth of `threads` threads over the same working set as
// BM_ReadBandwidth, measured once per thread count in this process: the
// baseline of the sparse kernels' "vs_read" ratio.
double read_gbps(int threads) {
  static std::map<int, double> measured;
  if (auto it = measured.find(threads); it != measured.end()) return it->second;
  const int64_t words = kIn * kOut / 2;
  const int64_t copies = copies_for(uint64_t(words) * 8);
  const std::shared_ptr<uint64_t> w = read_buffer(size_t(words * copies));
  ffn::ThreadPool pool(threads);
  std::vector<uint64_t> partial(threads);
  const int reps = int(2 * copies);
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < reps; ++i) {
    const uint64_t* base = w.get() + (i % copies) * words;
    pool.parallel_for(words, [&](int64_t b, int64_t e, int t) { partial[t] = ffn::sum_words(base + b, e - b); });
    benchmark::DoNotOptimize(partial.data());
  }
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return measured[threads] = double(words) * 8 * reps / s / 1e9;
}

// Sparse kernels on the TinyLlama FFN shape [kOut, kIn] = [5632, 2048]: the
// up projection for matmul_gather_rows (5632 output rows of 2048), and the
// transposed down projection for matmul_sparse_input (5632 input rows of
// 2048 outputs). Weights: distinct copies totalling >= 512 MiB (built once per
// type and shared by both benchmarks); active sets: 8 random draws of the
// given density, cycled. GB/s counts only the bytes of the rows read.
struct SparseWeights {
  ffn::DType type{};
  uint64_t bytes = 0;
  int64_t copies = 0;
  std::shared_ptr<uint8_t> w;  // in 2 MiB pages, as a model's transposed weights (ffn::weight_allocation)
};
const SparseWeights& sparse_weights(ffn::DType type) {
  static SparseWeights s;
  if (s.w && s.type == type) return s;
  s.type = type;
  const uint64_t row_bytes = ffn::dtype_row_bytes(type, kIn);
  s.bytes = row_bytes * kOut;
  s.copies = copies_for(s.bytes);
  s.w = ffn::weight_allocation(s.bytes * s.copies);
  auto rows = random_buffer(size_t(kIn));
  for (int64_t r = 0; r < kOut * s.copies; ++r) {
    rows[r % kIn] += 0.01f;
    ffn::encode_row(type, rows.data(), s.w.get() + r * row_bytes, kIn);
  }
  return s;
}
std::vector<std::vector<int32_t>> active_sets(int64_t n, int64_t density_percent) {
  std::vector<std::vector<int32_t>> sets(8);
  std::mt19937 rng(7);
  for (auto& set : sets) {
    std::vector<int32_t> all(static_cast<size_t>(n));
    std::iota(all.begin(), all.end(), 0);
    std::shuffle(all.begin(), all.end(), rng);
    all.resize(static_cast<size_t>(n * density_percent / 100));
    std::sort(all.begin(), all.end());
    set = std::move(all);
  }
  return sets;
}

// The copies of sw re-laid by packed_for_sparse_input (built once).
const std::vector<ffn::WeightMatrix>& sparse_input_layouts(const SparseWeights& sw) {
  static std::vector<ffn::WeightMatrix> layouts;
  static const SparseWeights* built_for = nullptr;
  if (built_for == &sw && static_cast<int64_t>(layouts.size()) == sw.copies) return layouts;
  layouts.clear();
  for (int64_t i = 0; i < sw.copies; ++i)
    layouts.push_back(ffn::packed_for_sparse_input(
        ffn::WeightMatrix{.type = sw.type, .rows = kOut, .cols = kIn, .data = sw.w.get() + i * sw.bytes}));
  built_for = &sw;
  return layouts;
}

// Args: weight type (ggml id), density (% of rows active), threads, and the
// layout (0: stored rows; 1: the Q8_0/Q4_0 VNNI row layout of
// kernels/sparse_input_q8.h, which matmul_sparse_input reads as W^T rows and
// gather_rows_q8 as W rows).
template <bool kSparseInput>
void sparse_bench(benchmark::State& state) {
  const auto type = static_cast<ffn::DType>(state.range(0));
  const int64_t density = state.range(1);
  const int threads = static_cast<int>(state.range(2));
  const bool relaid = state.range(3) == 1;
  const SparseWeights& sw = sparse_weights(type);
  const std::vector<ffn::WeightMatrix>* layouts = relaid ? &sparse_input_layouts(sw) : nullptr;
  const auto sets = active_sets(kOut, density);
  const int64_t n_active = int64_t(sets[0].size());
  const auto x = random_buffer(size_t(kSparseInput ? n_active : kIn));
  std::vector<float> y(size_t(kSparseInput ? kIn : n_active));
  ffn::WeightMatrix m{.type = type, .rows = kOut, .cols = kIn};
  ffn::ThreadPool pool(threads);
  auto step = [&](int64_t i) {
    if (layouts) m = (*layouts)[size_t(i % sw.copies)];
    else m.data = sw.w.get() + (i % sw.copies) * sw.bytes;
    const auto& set = sets[i % sets.size()];
    if (kSparseInput) ffn::matmul_sparse_input(m, x.data(), 1, set.data(), n_active, y.data(), pool);
    else if (relaid) ffn::gather_rows_q8(m, x.data(), 1, set.data(), n_active, y.data(), pool);
    else ffn::matmul_gather_rows(m, x.data(), 1, set.data(), n_active, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
  };
  // Untimed passes over every copy for ~0.3 s: right after the weights are
  // written, the first ~100 products run up to 2x slower than steady state
  // here (page-level effects of a fresh 512 MiB allocation).
  const auto warm_end = std::chrono::steady_clock::now() + std::chrono::milliseconds(300);
  for (int64_t i = 0; i < sw.copies || std::chrono::steady_clock::now() < warm_end; ++i) step(i);
  int64_t i = 0;
  for (auto _ : state) step(i++);
  const double read = double(m.row_bytes()) * n_active;
  state.SetLabel(ffn::dtype_name(type));
  state.counters["GB/s"] = benchmark::Counter(read * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.counters["read_GB/s"] = read_gbps(threads);
  state.counters["vs_read"] = benchmark::Counter(read * state.iterations() / 1e9 / read_gbps(threads),
                                                 benchmark::Counter::kIsRate);
}
void BM_SparseInput(benchmark::State& state) { sparse_bench<true>(state); }

// The one-token input-sparse product at its default prefetch distance and
// at `groups` groups ahead (kernels/group_prefetch.h), alternating call by
// call in one process, as BM_PackedPrefetch: Q8_0 and Q4_0 in the VNNI
// layout (kernels/sparse_input_q8.h), BF16 as stored. Reports GB/s of each
// and their ratio (groups / default). Args: weight type, threads, density
// (% of W^T's rows active), groups (the default's own value is the control).
void BM_SparseInputPrefetch(benchmark::State& state) {
  const auto type = static_cast<ffn::DType>(state.range(0));
  const int threads = static_cast<int>(state.range(1));
  const int groups = static_cast<int>(state.range(3));
  const bool relaid = type == ffn::DType::Q8_0 || type == ffn::DType::Q4_0;
  if (relaid && !ffn::cpu_has_avx512bw()) {
    state.SkipWithError("the VNNI input-sparse layout needs AVX-512 BW");
    return;
  }
  const SparseWeights& sw = sparse_weights(type);
  const std::vector<ffn::WeightMatrix>* layouts = relaid ? &sparse_input_layouts(sw) : nullptr;
  auto matrix = [&](int64_t i) {
    if (layouts) return (*layouts)[size_t(i % sw.copies)];
    return ffn::WeightMatrix{.type = type, .rows = kOut, .cols = kIn, .data = sw.w.get() + (i % sw.copies) * sw.bytes};
  };
  const auto sets = active_sets(kOut, state.range(2));
  const int64_t n_active = int64_t(sets[0].size());
  const auto x = random_buffer(size_t(n_active));
  std::vector<float> y(static_cast<size_t>(kIn));
  ffn::ThreadPool pool(threads);
  const auto seconds = alternating_seconds(state, [&](int candidate, int64_t i) {
    ffn::override_prefetch_groups(candidate ? groups : -1);
    ffn::matmul_sparse_input(matrix(i), x.data(), 1, sets[size_t(i) % sets.size()].data(), n_active, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
  });
  ffn::override_prefetch_groups(-1);
  state.SetLabel(ffn::dtype_name(type));
  report_alternating(state, seconds, double(matrix(0).row_bytes()) * double(n_active) / 1e9, "default_GB/s",
                     "groups_GB/s");
}
BENCHMARK(BM_SparseInputPrefetch)
    ->ArgsProduct({{int64_t(ffn::DType::Q8_0), int64_t(ffn::DType::Q4_0), int64_t(ffn::DType::BF16)},
                   {1, 2},
                   {50, 80},
                   {0, 1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// W^T at one of TinyLlama's shapes, re-laid for the VNNI input-sparse
// kernel (Q8_0, Q4_0) in copies that exceed the last-level cache, with the
// active sets of its typical density: the down projection (5632 x 2048,
// ~30% of rows active under TEAL 50%), gate|up joined (2048 x 11264, 50%)
// and q|k|v joined (2048 x 2560, 75%). `placements`: one set of copies per
// placement (kernels/row_placement.h).
struct TinyLlamaSparseInput {
  int64_t n_out = 0, n_active = 0;
  uint64_t row_bytes = 0;  // file bytes of a row
  std::vector<std::vector<ffn::WeightMatrix>> layouts;  // [placement][copy]
  std::vector<std::vector<int32_t>> sets;
  ffn::AlignedVector<float> x;
  std::vector<float> y;
};
TinyLlamaSparseInput tinyllama_sparse_input(ffn::DType type, int shape_index,
                                            std::initializer_list<ffn::RowPlacement> placements,
                                            ffn::ThreadPool& pool) {
  struct Shape {
    int64_t n_in, n_out, density;
  };
  const Shape shapes[] = {{5632, 2048, 30}, {2048, 11264, 50}, {2048, 2560, 75}};
  const Shape shape = shapes[shape_index];
  TinyLlamaSparseInput t;
  t.n_out = shape.n_out;
  t.row_bytes = ffn::dtype_row_bytes(type, uint64_t(shape.n_out));
  ffn::AlignedVector<uint8_t> file(t.row_bytes * uint64_t(shape.n_in));
  const auto rows = random_buffer(size_t(shape.n_out) * 16);
  for (int64_t j = 0; j < shape.n_in; ++j)
    ffn::encode_row(type, rows.data() + (j % 16) * shape.n_out, file.data() + uint64_t(j) * t.row_bytes,
                    uint64_t(shape.n_out));
  const ffn::WeightMatrix wt{.type = type, .rows = shape.n_in, .cols = shape.n_out, .data = file.data()};
  const int64_t copies = copies_for(uint64_t(shape.n_in) * ffn::sparse_input_row_stride(type, shape.n_out));
  for (const ffn::RowPlacement placement : placements) {
    t.layouts.emplace_back();
    for (int64_t c = 0; c < copies; ++c) t.layouts.back().push_back(ffn::packed_for_sparse_input(wt, &pool, placement));
  }
  t.sets = active_sets(shape.n_in, shape.density);
  t.n_active = int64_t(t.sets[0].size());
  t.x = random_buffer(size_t(t.n_active));
  t.y.resize(size_t(shape.n_out));
  return t;
}

// Args of the benchmarks on tinyllama_sparse_input: weight type (Q8_0,
// Q4_0), threads (1, 2), shape (0 down, 1 gate|up, 2 q|k|v).
void tinyllama_sparse_input_args(benchmark::internal::Benchmark* b) {
  b->ArgsProduct({{int64_t(ffn::DType::Q8_0), int64_t(ffn::DType::Q4_0)}, {1, 2}, {0, 1, 2}})
      ->UseRealTime()
      ->Unit(benchmark::kMillisecond);
}

// False (the benchmark skipped with the reason) without the CPU the VNNI
// input-sparse layout needs.
bool has_sparse_input_layout(benchmark::State& state) {
  if (ffn::cpu_has_avx512bw()) return true;
  state.SkipWithError("the VNNI input-sparse layout needs AVX-512 BW");
  return false;
}

// Product i of an alternating run on layout set `placement` of t.
void tinyllama_product(TinyLlamaSparseInput& t, size_t placement, int64_t i, ffn::ThreadPool& pool) {
  const auto& copies = t.layouts[placement];
  ffn::matmul_sparse_input(copies[size_t(i) % copies.size()], t.x.data(), 1, t.sets[size_t(i) % t.sets.size()].data(),
                           t.n_active, t.y.data(), pool);
  benchmark::DoNotOptimize(t.y.data());
}

// The one-token VNNI input-sparse product (Q8_0, Q4_0) with the group
// stream and with prefetches along the rows (kernels/group_prefetch.h),
// alternating call by call in one process, at TinyLlama's shapes
// (tinyllama_sparse_input). Reports GB/s of each and their ratio (along /
// stream).
// Args: weight type, threads, shape (0 down, 1 gate|up, 2 q|k|v).
void BM_SparseInputPattern(benchmark::State& state) {
  if (!has_sparse_input_layout(state)) return;
  const auto type = static_cast<ffn::DType>(state.range(0));
  ffn::ThreadPool pool(static_cast<int>(state.range(1)));
  TinyLlamaSparseInput t = tinyllama_sparse_input(type, int(state.range(2)), {ffn::RowPlacement::kPacked}, pool);
  const auto seconds = alternating_seconds(state, [&](int along, int64_t i) {
    ffn::override_prefetch_pattern(along ? ffn::PrefetchPattern::kAlongRows : ffn::PrefetchPattern::kGroupStream);
    tinyllama_product(t, 0, i, pool);
  });
  ffn::override_prefetch_pattern(std::nullopt);
  state.SetLabel(ffn::dtype_name(type));
  report_alternating(state, seconds, double(t.row_bytes) * double(t.n_active) / 1e9, "stream_GB/s", "along_GB/s");
}
BENCHMARK(BM_SparseInputPattern)->Apply(tinyllama_sparse_input_args);

// The same products with rows back to back and with each row ending a 4 KiB
// page (kernels/row_placement.h), alternating call by call. Reports GB/s of
// each (file bytes of the rows read) and their ratio (pages / packed).
// Args: weight type, threads, shape (0 down, 1 gate|up, 2 q|k|v).
void BM_SparseInputPlacement(benchmark::State& state) {
  if (!has_sparse_input_layout(state)) return;
  const auto type = static_cast<ffn::DType>(state.range(0));
  ffn::ThreadPool pool(static_cast<int>(state.range(1)));
  TinyLlamaSparseInput t = tinyllama_sparse_input(
      type, int(state.range(2)), {ffn::RowPlacement::kPacked, ffn::RowPlacement::kPageEnds}, pool);
  const auto seconds =
      alternating_seconds(state, [&](int pages, int64_t i) { tinyllama_product(t, size_t(pages), i, pool); });
  state.SetLabel(ffn::dtype_name(type));
  report_alternating(state, seconds, double(t.row_bytes) * double(t.n_active) / 1e9, "packed_GB/s", "pages_GB/s");
}
BENCHMARK(BM_SparseInputPlacement)->Apply(tinyllama_sparse_input_args);
// The one-token tail of a gate-sparse FFN (CATS, CHESS, statistical top-k)
// at TinyLlama's shape: the kept neurons' up rows and down columns, as two
// passes over separate matrices (a gather, then the input-sparse product)
// and as the fused pass over paired rows (kernels/neuron_rows.h),
// alternating call by call in one process. Up and down^T of pair j are
// sparse_input_layouts copies 2j and 2j + 1 (BF16: the stored copies).
// Reports GB/s of each (bytes of the rows read, both matrices) and their
// ratio (fused / two passes).
// Args: weight type (Q8_0, Q4_0, BF16), threads, density (% of neurons kept).
void BM_GatedNeuronRows(benchmark::State& state) {
  const auto type = static_cast<ffn::DType>(state.range(0));
  const int threads = static_cast<int>(state.range(1));
  const bool relaid = type == ffn::DType::Q8_0 || type == ffn::DType::Q4_0;
  if (relaid && !ffn::cpu_has_avx512bw()) {
    state.SkipWithError("the VNNI row layout needs AVX-512 BW");
    return;
  }
  const SparseWeights& sw = sparse_weights(type);
  const std::vector<ffn::WeightMatrix>& layouts = sparse_input_layouts(sw);
  static std::vector<ffn::NeuronRows> pairs;
  static ffn::DType pairs_type{};
  if (pairs.empty() || pairs_type != type) {
    pairs.clear();
    for (size_t j = 0; 2 * j + 1 < layouts.size(); ++j)
      pairs.push_back(ffn::paired_neuron_rows(layouts[2 * j], layouts[2 * j + 1]));
    pairs_type = type;
  }
  const int64_t n_pairs = int64_t(pairs.size());
  if (n_pairs == 0) {
    state.SkipWithError("the working set holds no pair of matrices");
    return;
  }
  const auto sets = active_sets(kOut, state.range(2));
  const int64_t n_active = int64_t(sets[0].size());
  const auto x = random_buffer(size_t(kIn)), act = random_buffer(size_t(n_active));
  std::vector<float> u(static_cast<size_t>(n_active)), y(static_cast<size_t>(kIn));
  ffn::ThreadPool pool(threads);
  const auto seconds = alternating_seconds(state, [&](int fused, int64_t i) {
    const int64_t j = (i / 2) % n_pairs;
    const auto& set = sets[size_t(i / 2) % sets.size()];
    if (fused) {
      ffn::gated_neuron_rows(pairs[size_t(j)].up, pairs[size_t(j)].down_t, x.data(), act.data(), set.data(),
                             n_active, y.data(), pool);
    } else {
      const ffn::WeightMatrix& up = layouts[size_t(2 * j)];
      if (relaid) ffn::gather_rows_q8(up, x.data(), 1, set.data(), n_active, u.data(), pool);
      else ffn::matmul_gather_rows(up, x.data(), 1, set.data(), n_active, u.data(), pool);
      for (int64_t k = 0; k < n_active; ++k) u[size_t(k)] *= act[size_t(k)];
      ffn::matmul_sparse_input(layouts[size_t(2 * j + 1)], u.data(), 1, set.data(), n_active, y.data(), pool);
    }
    benchmark::DoNotOptimize(y.data());
  });
  state.SetLabel(ffn::dtype_name(type));
  const double row = double(relaid ? ffn::sparse_input_row_stride(type, kIn) : ffn::dtype_row_bytes(type, kIn));
  report_alternating(state, seconds, 2 * row * double(n_active) / 1e9, "two_pass_GB/s", "fused_GB/s");
}
BENCHMARK(BM_GatedNeuronRows)
    ->ArgsProduct({{int64_t(ffn::DType::Q8_0), int64_t(ffn::DType::Q4_0), int64_t(ffn::DType::BF16)}, {1, 2}, {25, 50}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_GatherRows(benchmark::State& state) { sparse_bench<false>(state); }
void sparse_args(benchmark::internal::Benchmark* b) {
  for (ffn::DType t : {ffn::DType::F32, ffn::DType::F16, ffn::DType::BF16, ffn::DType::Q8_0, ffn::DType::Q4_0})
    for (int64_t density : {10, 50, 100})
      for (int threads : {1, 2}) b->Args({int64_t(t), density, threads, 0});
}
void relaid_args(benchmark::internal::Benchmark* b) {
  sparse_args(b);
  if (!ffn::cpu_has_avx512bw()) return;
  for (ffn::DType t : {ffn::DType::Q8_0, ffn::DType::Q4_0})
    for (int64_t density : {10, 50, 100})
      for (int threads : {1, 2}) b->Args({int64_t(t), density, threads, 1});
}
BENCHMARK(BM_SparseInput)->Apply(relaid_args)->UseRealTime()->Unit(benchmark::kMillisecond);
BENCHMARK(BM_GatherRows)->Apply(relaid_args)->UseRealTime()->Unit(benchmark::kMillisecond);

// The memory system's ceiling for the sparse kernels: a plain read (one
// 8-byte load per 64-byte line, nothing computed) of `density`% of rows of
// `row_bytes` bytes in random order, 8 rows at a time with 1 KiB software
// prefetch: the access pattern of the VNNI input-sparse kernel
// (kernels/sparse_input_q8.h), without its arithmetic. Rows of 2176 bytes
// are the Q8_0 W^T of TinyLlama's down projection, 6016 its gate/up, 1152
// the Q4_0 W^T of the down projection.
// vs_read: the ratio to the sequential read bandwidth (BM_ReadBandwidth).
// Placement (kernels/row_placement.h): 0 rows back to back; 1 each row
// ending a 4 KiB page; 2 each row starting one (the same memory as 1, with
// the rest of each page unused: what a prefetcher fetches past a row's end
// costs bandwidth there and nowhere else).
// Args: row bytes, density (%), threads, placement.
void BM_ReadRows(benchmark::State& state) {
  const int64_t row_bytes = state.range(0), density = state.range(1);
  const int threads = static_cast<int>(state.range(2));
  const int placement = static_cast<int>(state.range(3));
  const int64_t pitch = placement == 0 ? row_bytes : (row_bytes + 4095) / 4096 * 4096;
  const int64_t offset = placement == 1 ? pitch - row_bytes : 0;
  const int64_t rows = kIn * kOut / row_bytes;  // ~11.5 MB of rows per copy
  const int64_t copies = copies_for(uint64_t(rows * pitch));
  // In 2 MiB pages (2 MiB aligned), as the model's scattered-row weights: in
  // 4 KiB pages every row is also a TLB miss.
  const std::shared_ptr<uint8_t> w = ffn::weight_allocation(uint64_t(rows * pitch * copies));
  std::memset(w.get(), 1, size_t(rows * pitch * copies));
  const auto sets = active_sets(rows, density);
  ffn::ThreadPool pool(threads);
  std::vector<uint64_t> sink(static_cast<size_t>(threads));
  auto read = [&](const uint8_t* base, const std::vector<int32_t>& set, int64_t b, int64_t e) {
    uint64_t acc = 0;
    auto row = [&](int64_t k) { return base + int64_t(set[size_t(std::min(k, e - 1))]) * pitch + offset; };
    for (int64_t k = b; k < e; k += 8) {
      const int64_t n = std::min<int64_t>(8, e - k);
      for (int64_t c = 0; c + 8 <= row_bytes; c += 64)
        for (int64_t r = 0; r < n; ++r) {
          const int64_t ahead = c + 1024;
          __builtin_prefetch(ahead < row_bytes ? row(k + r) + ahead : row(k + 8 + r) + (ahead - row_bytes), 0, 3);
          uint64_t v;
          std::memcpy(&v, row(k + r) + c, 8);
          acc += v;
        }
    }
    return acc;
  };
  int64_t i = 0;
  for (auto _ : state) {
    const auto& set = sets[size_t(i % int64_t(sets.size()))];
    const uint8_t* base = w.get() + (i % copies) * rows * pitch;
    pool.parallel_for(threads, [&](int64_t t0, int64_t t1, int) {
      for (int64_t t = t0; t < t1; ++t)
        sink[size_t(t)] += read(base, set, int64_t(set.size()) * t / threads, int64_t(set.size()) * (t + 1) / threads);
    });
    ++i;
  }
  benchmark::DoNotOptimize(sink.data());
  const double bytes = double(row_bytes) * double(sets[0].size());
  state.counters["GB/s"] = benchmark::Counter(bytes * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.counters["vs_read"] = benchmark::Counter(bytes * state.iterations() / 1e9 / read_gbps(threads),
                                                 benchmark::Counter::kIsRate);
}
BENCHMARK(BM_ReadRows)
    ->ArgsProduct({{1152, 2176, 6016}, {50, 100}, {1, 2}, {0}})
    ->ArgsProduct({{2176}, {30, 50, 75}, {2}, {1, 2}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// Args: cached positions, head_dim. One query head of TinyLlama's shape
// (kv_dim 256 per cache row, the head at offset 64) over a cache in L2,
// as decode meets it: attend_head against the per-position dot / axpy it
// replaced (kept here as the baseline, through the exported dot_f32 /
// axpy_f32 and softmax). GB/s counts the keys and values read.
void BM_AttendHead(benchmark::State& state) {
  const int64_t n_pos = state.range(0), head_dim = state.range(1), stride = 256;
  const bool per_position = state.range(2) != 0;
  const auto keys = random_buffer(size_t(n_pos * stride)), values = random_buffer(size_t(n_pos * stride));
  const auto q = random_buffer(size_t(head_dim));
  std::vector<float> scores(static_cast<size_t>(n_pos)), out(static_cast<size_t>(head_dim));
  const float scale = 0.125f;
  for (auto _ : state) {
    const float* k = keys.data() + 64;
    const float* v = values.data() + 64;
    if (per_position) {
      for (int64_t j = 0; j < n_pos; ++j) scores[size_t(j)] = ffn::dot_f32(q.data(), k + j * stride, head_dim) * scale;
      ffn::softmax(scores.data(), n_pos);
      std::fill(out.begin(), out.end(), 0.0f);
      for (int64_t j = 0; j < n_pos; ++j) ffn::axpy_f32(scores[size_t(j)], v + j * stride, out.data(), head_dim);
    } else {
      ffn::attend_head(q.data(), k, v, stride, n_pos, head_dim, scale, scores.data(), out.data());
    }
    benchmark::DoNotOptimize(out.data());
  }
  state.SetLabel(per_position ? "per-position dot/axpy" : "attend_head");
  const double bytes = 2.0 * 4.0 * double(n_pos * head_dim);
  state.counters["GB/s"] = benchmark::Counter(bytes * state.iterations() / 1e9, benchmark::Counter::kIsRate);
  state.counters["GFLOP/s"] =
      benchmark::Counter(4.0 * double(n_pos * head_dim) * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_AttendHead)->ArgsProduct({{64, 512, 2048}, {64}, {0, 1}})->Unit(benchmark::kMicrosecond);

// Args: width, tokens. The activation selection that runs on the calling
// thread between two input-sparse products while the other threads wait
// (select_kept + pack_kept_values, TEAL's rule at ~50% kept): one token
// takes its own single pass, several tokens the union's two passes.
void BM_SelectKept(benchmark::State& state) {
  const int64_t width = state.range(0), n_tok = state.range(1);
  const auto x = random_buffer(size_t(width * n_tok));  // uniform in [-1, 1]
  const ffn::KeepRule rule{.threshold = 0.5f};
  ffn::SparseActivations p;
  for (auto _ : state) {
    ffn::select_kept(x.data(), n_tok, width, rule, p);
    ffn::pack_kept_values(x.data(), rule, p);
    benchmark::DoNotOptimize(p.values.data());
  }
  state.counters["kept"] = double(p.kept) / double(width * n_tok);
  state.counters["GB/s"] =
      benchmark::Counter(4.0 * double(width * n_tok) * state.iterations() / 1e9, benchmark::Counter::kIsRate);
}
BENCHMARK(BM_SelectKept)->ArgsProduct({{2048, 5632}, {1, 8}})->Unit(benchmark::kMicrosecond);

}  // namespace

BENCHMARK_MAIN();
