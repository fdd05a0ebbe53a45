#include "eval/speed_bench.h"

#include <sys/resource.h>

#include <algorithm>
#include <random>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "core/timer.h"
#include "ffn/sparsity_meter.h"
#include "kernels/ops.h"
#include "kernels/packed_quant.h"
#include "model/llama_model.h"
#include "model/moe_params.h"

namespace ffn {

namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

// Passes (best of) per bandwidth measurement beside a decode repetition.
constexpr int kBandwidthPasses = 3;

// Random prompt tokens of the model's vocabulary, from `seed`.
std::vector<int32_t> random_prompt(const LlamaModel& model, int64_t n, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::uniform_int_distribution<int32_t> token(0, static_cast<int32_t>(model.config().vocab_size - 1));
  std::vector<int32_t> prompt(static_cast<size_t>(n));
  for (auto& t : prompt) t = token(rng);
  return prompt;
}

// One greedy decode step: `token` in, the most likely next token out.
int32_t decode_step(LlamaModel& model, KvCache& cache, Tensor& logits, int32_t token, ThreadPool& pool) {
  model.forward(&token, 1, cache, logits, false, pool);
  const float* row = logits.row(0);
  return static_cast<int32_t>(std::max_element(row, row + model.config().vocab_size) - row);
}

// As llama-bench's tg: `n` tokens decoded greedily one at a time from an
// empty context, starting at `first`. Seconds taken.
double decode_run(LlamaModel& model, KvCache& cache, Tensor& logits, int32_t first, int64_t n, ThreadPool& pool) {
  cache.clear();
  Timer t;
  int32_t next = first;
  for (int64_t i = 0; i < n; ++i) next = decode_step(model, cache, logits, next, pool);
  return t.seconds();
}

// SpeedBenchResult::vs_read: runs of `n` tokens from an empty context, each
// token followed by a read of `bytes` from the probe's buffer.
void decode_against_read(LlamaModel& model, KvCache& cache, Tensor& logits, int32_t first, int64_t n, int runs,
                         ReadBandwidthProbe& probe, uint64_t bytes, ThreadPool& pool, SpeedBenchResult& r) {
  std::vector<double> ratio, read_gb_s;
  const uint64_t words = std::max<uint64_t>(1, bytes / sizeof(uint64_t));
  volatile uint64_t keep = 0;
  for (int run = 0; run < runs; ++run) {
    cache.clear();
    int32_t next = first;
    for (int64_t i = 0; i < n; ++i) {
      Timer token;
      next = decode_step(model, cache, logits, next, pool);
      const double token_s = token.seconds();
      Timer read;
      keep = keep + probe.read_next(words);
      const double read_s = read.seconds();
      ratio.push_back(read_s / token_s);
      read_gb_s.push_back(double(words * sizeof(uint64_t)) / read_s / 1e9);
    }
  }
  r.vs_read_tokens = int64_t(ratio.size());
  r.vs_read = median(ratio);
  r.vs_read_gb_s = median(read_gb_s);
}

// Dropped / seen activations per site kind ("blk.3.ffn_mid" -> "ffn_mid"),
// summed over layers.
std::vector<std::pair<std::string, double>> sparsity_by_site_kind(const SparsityMeter& meter) {
  struct Kind {
    std::string name;
    uint64_t zeros = 0, total = 0;
  };
  std::vector<Kind> kinds;
  for (const SparsitySite& site : meter.sites()) {
    const std::string name = site.name.substr(site.name.find_last_of('.') + 1);
    auto it = std::find_if(kinds.begin(), kinds.end(), [&](const Kind& k) { return k.name == name; });
    if (it == kinds.end()) it = kinds.insert(kinds.end(), Kind{name});
    it->zeros += site.zeros;
    it->total += site.total;
  }
  std::vector<std::pair<std::string, double>> out;
  for (const Kind& k : kinds) out.emplace_back(k.name, k.total ? double(k.zeros) / double(k.total) : 0.0);
  return out;
}

}  // namespace

// In 2 MiB pages where the kernel allows, as the packed weights are
// (packed_weight_buffer): with 4 KiB pages, 1-thread measurements beside
// BF16 decode repetitions sometimes read 2-4 GB/s instead of ~28.
struct ReadBandwidthProbe::Buffer {
  std::shared_ptr<uint8_t> bytes;
  size_t n = 0;  // words
  uint64_t* words() const { return reinterpret_cast<uint64_t*>(bytes.get()); }
};

ReadBandwidthProbe::ReadBandwidthProbe(ThreadPool& pool, uint64_t bytes)
    : pool_(pool), buf_(std::make_unique<Buffer>()) {
  const size_t n = bytes / sizeof(uint64_t);
  buf_->bytes = packed_weight_buffer(n * sizeof(uint64_t));
  buf_->n = n;
  uint64_t* w = buf_->words();
  // Touch every page (and give the data a non-constant value) in parallel.
  pool.parallel_for(int64_t(n), [&](int64_t b, int64_t e, int) {
    for (int64_t i = b; i < e; ++i) w[i] = uint64_t(i) * kWordFactor;
  });
}

ReadBandwidthProbe::~ReadBandwidthProbe() = default;

uint64_t ReadBandwidthProbe::words() const { return buf_->n; }

uint64_t ReadBandwidthProbe::sum_range(uint64_t first, uint64_t words) const {
  const uint64_t* w = buf_->words();
  const int64_t n = int64_t(buf_->n);
  first %= uint64_t(n);
  std::vector<uint64_t> sums(static_cast<size_t>(pool_.size()));
  pool_.parallel_for(int64_t(words), [&](int64_t b, int64_t e, int thread) {
    uint64_t s = 0;
    for (int64_t i = b; i < e;) {
      const int64_t at = (int64_t(first) + i) % n, len = std::min(e - i, n - at);
      s += sum_words(w + at, len);
      i += len;
    }
    sums[size_t(thread)] = s;
  });
  uint64_t total = 0;
  for (uint64_t s : sums) total += s;
  return total;
}

uint64_t ReadBandwidthProbe::read_next(uint64_t words) {
  uint64_t sum = 0;
  for (uint64_t done = 0; done < words;) {
    const uint64_t pass = std::min(words - done, std::max<uint64_t>(1, buf_->n / 2));
    sum += sum_range(next_, pass);
    next_ = (next_ + pass) % buf_->n;
    done += pass;
  }
  return sum;
}

double ReadBandwidthProbe::measure(int reps) {
  double best = 0;
  volatile uint64_t keep = 0;
  for (int r = 0; r < reps; ++r) {
    Timer t;
    keep = keep + sum_range(0, buf_->n);
    best = std::max(best, double(buf_->n * sizeof(uint64_t)) / t.seconds() / 1e9);
  }
  return best;
}

double peak_rss_mb() {
  struct rusage u {};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_maxrss / 1024.0;  // ru_maxrss is in KiB on Linux
}

SpeedBenchResult run_speed_bench(LlamaModel& model, ThreadPool& pool, const SpeedBenchParams& p) {
  const auto& c = model.config();
  if (p.prefill_tokens < 1 || p.decode_tokens < 1 || p.repetitions < 1)
    throw Error("bench: -p, -n and -r must be at least 1");
  if (p.prefill_tokens > c.context_length || p.decode_tokens > c.context_length)
    throw Error("bench: -p and -n must not exceed the model's context length " + std::to_string(c.context_length));
  const std::vector<int32_t> prompt = random_prompt(model, p.prefill_tokens, p.seed);

  KvCache cache = model.make_cache(std::max(p.prefill_tokens, p.decode_tokens));
  Tensor logits;
  SpeedBenchResult r;
  // Warm-up: page in the weights and size the buffers.
  model.forward(prompt.data(), std::min<int64_t>(8, p.prefill_tokens), cache, logits, false, pool);

  std::vector<double> prefill, decode, bandwidth;
  ForwardProfile profile;
  for (int rep = 0; rep < p.repetitions; ++rep) {
    cache.clear();
    Timer t;
    model.forward(prompt.data(), p.prefill_tokens, cache, logits, false, pool);
    prefill.push_back(double(p.prefill_tokens) / t.seconds());
  }
  if (p.sparsity) p.sparsity->reset();
  model.moe_meter().reset();
  std::unique_ptr<ReadBandwidthProbe> probe;
  for (int rep = 0; rep < p.repetitions; ++rep) {
    model.set_profile(&profile);
    decode.push_back(double(p.decode_tokens) / decode_run(model, cache, logits, prompt[0], p.decode_tokens, pool));
    model.set_profile(nullptr);
    if (!probe) {
      // Every buffer the model uses exists now; the probe's must not count.
      r.peak_rss_mb = peak_rss_mb();
      probe = std::make_unique<ReadBandwidthProbe>(pool);
    }
    bandwidth.push_back(probe->measure(kBandwidthPasses));
  }
  r.prefill_tok_s = median(prefill);
  r.decode_tok_s = median(decode);
  const double total = profile.ffn_s + profile.attention_s + profile.other_s;
  if (total > 0) {
    r.decode_ffn_fraction = profile.ffn_s / total;
    r.decode_attention_fraction = profile.attention_s / total;
    r.decode_other_fraction = profile.other_s / total;
  }
  r.dense_bytes_per_token = model.weight_bytes_by_section();
  r.dense_weight_bytes_per_token = static_cast<uint64_t>(r.dense_bytes_per_token.total());
  r.bytes_per_token = r.dense_bytes_per_token;
  const double decoded = double(p.decode_tokens) * p.repetitions;
  if (p.sparsity) {
    r.achieved_sparsity = p.sparsity->achieved_sparsity();
    r.bytes_per_token.attention -= p.sparsity->skipped_bytes(SparsitySection::Attention) / decoded;
    r.bytes_per_token.ffn -= p.sparsity->skipped_bytes(SparsitySection::Ffn) / decoded;
    r.site_sparsity = sparsity_by_site_kind(*p.sparsity);
  }
  r.moe_top_k = moe_top_k(model);
  if (const MoeMeter& m = model.moe_meter(); m.tokens) {
    // weight_bytes() counts top_k FFN experts; slots routed to MoE++
    // zero-computation experts read none.
    r.moe_experts_per_token = m.ffn_experts_per_token();
    r.bytes_per_token.ffn -= double(m.zero_slots + m.copy_slots + m.const_slots) * m.ffn_expert_bytes / decoded;
  }
  const BySection& b = r.bytes_per_token;
  r.weight_bytes_per_token = static_cast<uint64_t>(b.total());
  auto rate = [&](double bytes, double seconds) { return seconds > 0 ? bytes * decoded / seconds / 1e9 : 0.0; };
  r.decode_gb_s_by_section = {rate(b.attention, profile.attention_s), rate(b.ffn, profile.ffn_s),
                              rate(b.other, profile.other_s)};
  r.decode_gb_s = double(r.weight_bytes_per_token) * r.decode_tok_s / 1e9;
  // Repetition i ran between measurements i - 1 and i (the first one only
  // before measurement 0).
  std::vector<double> fraction;
  for (size_t i = 0; i < decode.size(); ++i) {
    const double beside = i == 0 ? bandwidth[0] : 0.5 * (bandwidth[i - 1] + bandwidth[i]);
    fraction.push_back(double(r.weight_bytes_per_token) * decode[i] / 1e9 / beside);
  }
  r.bandwidth_gb_s = median(bandwidth);
  r.bandwidth_fraction = median(fraction);
  if (p.vs_read)
    decode_against_read(model, cache, logits, prompt[0], p.decode_tokens, p.repetitions, *probe,
                        r.weight_bytes_per_token, pool, r);
  return r;
}

DecodeComparison compare_decode(LlamaModel& baseline, LlamaModel& variant, ThreadPool& pool,
                                const SpeedBenchParams& p) {
  if (p.decode_tokens < 1 || p.repetitions < 1) throw Error("bench: -n and -r must be at least 1");
  if (baseline.config().vocab_size != variant.config().vocab_size)
    throw Error("bench: the baseline and the variant have different vocabularies");
  const int64_t n = p.decode_tokens;
  for (LlamaModel* m : {&baseline, &variant})
    if (n > m->config().context_length)
      throw Error("bench: -n must not exceed the model's context length " +
                  std::to_string(m->config().context_length));
  const int32_t first = random_prompt(baseline, 1, p.seed)[0];
  struct Side {
    LlamaModel& model;
    KvCache cache;
    Tensor logits;
    std::vector<double> tok_s, ffn_s_per_token, attention_s_per_token;
  };
  Side sides[2] = {{baseline, baseline.make_cache(n), {}, {}, {}, {}},
                   {variant, variant.make_cache(n), {}, {}, {}, {}}};
  for (Side& side : sides) decode_run(side.model, side.cache, side.logits, first, std::min<int64_t>(8, n), pool);
  std::vector<double> speedup, ffn_speedup, attention_speedup;
  for (int round = 0; round < p.repetitions; ++round) {
    for (int k = 0; k < 2; ++k) {
      Side& side = sides[(round + k) % 2];
      ForwardProfile profile;
      side.model.set_profile(&profile);
      side.tok_s.push_back(double(n) / decode_run(side.model, side.cache, side.logits, first, n, pool));
      side.model.set_profile(nullptr);
      side.ffn_s_per_token.push_back(profile.ffn_s / double(n));
      side.attention_s_per_token.push_back(profile.attention_s / double(n));
    }
    speedup.push_back(sides[1].tok_s.back() / sides[0].tok_s.back());
    ffn_speedup.push_back(sides[0].ffn_s_per_token.back() / sides[1].ffn_s_per_token.back());
    attention_speedup.push_back(sides[0].attention_s_per_token.back() / sides[1].attention_s_per_token.back());
  }
  DecodeComparison r;
  r.rounds = p.repetitions;
  r.baseline_tok_s = median(sides[0].tok_s);
  r.variant_tok_s = median(sides[1].tok_s);
  r.speedup = median(speedup);
  r.ffn_speedup = median(ffn_speedup);
  r.attention_speedup = median(attention_speedup);
  return r;
}

}  // namespace ffn
