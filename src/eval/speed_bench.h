// End-to-end speed measurement of a model: prefill and decode tokens/s
// (median of repetitions), where the time goes (FFN / attention / other),
// weight bytes read per decoded token, and the machine's own memory read
// bandwidth measured in the same run, so decode can be stated as a fraction
// of the hardware limit (bytes per token / bandwidth).
//
// The bandwidth is measured after every decode repetition, so each
// repetition is compared with the bandwidth measured beside it: on a shared
// VM the 2-thread bandwidth was seen to move between 37 and 64 GB/s within
// minutes, and one measurement at the end made "% of bandwidth" swing by
// tens of points from run to run.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "model/by_section.h"

namespace ffn {

class LlamaModel;
class SparsityMeter;
class ThreadPool;

struct SpeedBenchParams {
  int64_t prefill_tokens = 128;
  int64_t decode_tokens = 64;
  int repetitions = 3;
  uint64_t seed = 1;
  // The meter of an activation-sparse model (transform/sparsify.h): decode's
  // achieved sparsity and skipped weight bytes are measured through it.
  SparsityMeter* sparsity = nullptr;
  // Also decode decode_tokens x repetitions more tokens, each followed by a
  // plain read of its weight bytes from the bandwidth probe's buffer
  // (SpeedBenchResult::vs_read).
  bool vs_read = false;
};

struct SpeedBenchResult {
  double prefill_tok_s = 0;
  double decode_tok_s = 0;
  uint64_t weight_bytes_per_token = 0;        // read per decoded token (sparse: measured)
  uint64_t dense_weight_bytes_per_token = 0;  // every weight once
  double achieved_sparsity = 0;               // during decode, in the method's own definition
  int64_t moe_top_k = 0;                      // 0: no MoE layers
  double moe_experts_per_token = 0;           // FFN experts run per token and MoE layer during decode
  double decode_gb_s = 0;
  double bandwidth_gb_s = 0;      // median of the measurements beside the decode repetitions
  // Median over decode repetitions of (weight bytes per token x that
  // repetition's tok/s) / (the bandwidth measured just before and after it).
  double bandwidth_fraction = 0;
  double decode_ffn_fraction = 0, decode_attention_fraction = 0, decode_other_fraction = 0;
  // weight_bytes_per_token and dense_weight_bytes_per_token by section, and
  // the rate each section read its weights at during decode (its bytes per
  // token x tokens decoded / the time ForwardProfile gave it): where a
  // variant falls short of its bytes-read ratio.
  BySection bytes_per_token, dense_bytes_per_token, decode_gb_s_by_section;
  // Achieved sparsity per kind of site, over all layers (activations dropped
  // / seen; the kind is the site's name after "blk.N.", e.g. "attn_in",
  // "ffn_mid"), in the order the sites were registered.
  std::vector<std::pair<std::string, double>> site_sparsity;
  double peak_rss_mb = 0;
  // With SpeedBenchParams::vs_read: the median over decoded tokens of (the
  // seconds a plain read of weight_bytes_per_token took right after the
  // token) / (the token's seconds), and the median read rate. Token and read
  // are microseconds apart, so the machine's drift, which moves the
  // bandwidth by tens of percent within minutes on a shared VM, hits both
  // alike: 1.0 means decode reads its weights as fast as a plain read of the
  // same bytes. (A sparse variant's bytes per token are its average.)
  int64_t vs_read_tokens = 0;
  double vs_read = 0, vs_read_gb_s = 0;
};

// Read bandwidth of this machine in GB/s: the best of `reps` passes summing a
// buffer of `bytes` (>= 1 GiB, far above the last-level cache) on every
// thread of the pool. The buffer is allocated and touched once, so that
// measure() can run between other work.
class ReadBandwidthProbe {
 public:
  ReadBandwidthProbe(ThreadPool& pool, uint64_t bytes = 1ull << 30);
  ~ReadBandwidthProbe();
  double measure(int reps);
  // Word i of the buffer holds i x kWordFactor (non-constant, so that no
  // read can be elided).
  static constexpr uint64_t kWordFactor = 0x9e3779b97f4a7c15ull;
  // The sum of `words` 8-byte words of the buffer from word `first`,
  // wrapping at its end, split over the pool's threads: a plain read,
  // nothing else computed.
  uint64_t sum_range(uint64_t first, uint64_t words) const;
  // The sum of the next `words` words after those the last call read,
  // wrapping: any number of bytes, read in passes of at most half the
  // buffer, so that the threads' halves of a pass never share a word and a
  // word is read again only after the rest of the buffer. (With one pass
  // wrapping round a 1 GiB buffer, the second thread re-read what the first
  // had read ~40 MB earlier, and a 2 GB read ran 1.3x faster than DRAM.)
  uint64_t read_next(uint64_t words);
  uint64_t words() const;

 private:
  ThreadPool& pool_;
  uint64_t next_ = 0;  // read_next's position
  struct Buffer;
  std::unique_ptr<Buffer> buf_;
};


// Peak resident set size of this process so far, in MiB.
double peak_rss_mb();

SpeedBenchResult run_speed_bench(LlamaModel& model, ThreadPool& pool, const SpeedBenchParams& params);

// Decode of a variant (sparse, MoE, ...) against its baseline (the same
// file without the transformation), both loaded in this process and run in
// alternating rounds: each round decodes params.decode_tokens tokens with
// one and then the other (the order flips every round, so drift within a
// round favours neither). The machine's bandwidth moves by tens of percent
// within minutes on a shared VM; ratios of neighbouring runs move far less
// than runs minutes apart. params.repetitions rounds.
struct DecodeComparison {
  int rounds = 0;
  double baseline_tok_s = 0, variant_tok_s = 0;  // medians over rounds
  double speedup = 0;                            // median over rounds of variant / baseline tok/s
  // Median over rounds of the baseline's FFN seconds per token over the
  // variant's (ForwardProfile): the FFN alone, as CATS's targets are stated.
  double ffn_speedup = 0;
  double attention_speedup = 0;  // the same for the attention section
};
DecodeComparison compare_decode(LlamaModel& baseline, LlamaModel& variant, ThreadPool& pool,
                                const SpeedBenchParams& params);

}  // namespace ffn
