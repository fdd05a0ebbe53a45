// `ffn report`: evaluates model variants side by side — quality against the
// dense model on a text, speed on a (possibly larger) bench model — and
// writes report.md, report.csv and report.svg (quality vs decode speed).
//
// A variant is a '+'-separated list of steps applied to the loaded model:
//   dense                   the model as loaded
//   f32|f16|bf16|q8_0|q4_0  weights re-encoded (ffn quantize)
//   sparse:METHOD:TARGET    activation sparsity (transform/sparsify.h)
//   moe:E/K[/split][/sS]    dense -> mixture of experts (transform/dense_to_moe.h)
//   upcycle:E/K, average    copied experts / experts averaged (transform/upcycle.h)
// e.g. "q8_0+sparse:teal:0.5", "q8_0+moe:16/4/coact". An FFN transform runs
// before re-encoding, on the weights as loaded.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "eval/speed_bench.h"

namespace ffn {

class ThreadPool;

struct VariantSpec {
  std::string text;                 // as given
  std::optional<DType> type;        // re-encode weights
  std::string sparsity;             // "METHOD:TARGET" or empty
  std::string ffn;                  // an FFN transform step (transform/ffn_transform.h) or empty
};

// Errors name the variant and list the accepted forms.
VariantSpec parse_variant(const std::string& text);

struct ReportOptions {
  std::string model, tokenizer, text;
  std::string bench_model;           // empty: the quality model
  std::string calib_text;            // empty: calibrate on the text after the scored tokens
  std::vector<std::string> variants;
  int64_t ctx = 256;
  int64_t tokens = 8192;             // tokens scored for quality
  int64_t calib_tokens = 8192;
  SpeedBenchParams bench;
  bool run_bench = true;
};

struct ReportRow {
  std::string variant;
  std::string description;           // FFN of layer 0
  double ppl = 0, nll = 0, kl = 0, top1 = 0;
  double achieved_sparsity = 0;      // on the quality text (sparse variants)
  double moe_experts_per_token = 0;  // FFN experts run per token and MoE layer on the quality text (0: dense)
  double decode_tok_s = 0, prefill_tok_s = 0;
  double decode_speedup = 0;         // vs the first variant, same run
  uint64_t weight_bytes_per_token = 0;
  double bench_sparsity = 0;         // during the bench's decode
  double rss_mb = 0;                 // resident set after the bench
};

struct Report {
  ReportOptions options;
  std::string calibration_note;
  int64_t tokens_scored = 0;
  std::vector<ReportRow> rows;
};

// progress(stage, done, total) for a progress bar.
Report run_report(const ReportOptions& options, ThreadPool& pool,
                  const std::function<void(const std::string&, int64_t, int64_t)>& progress = {});

// Writes dir/report.md, dir/report.csv, dir/report.svg (creates dir).
void write_report(const Report& report, const std::string& dir);

// The SVG scatter plot alone: quality (perplexity) vs decode tokens/s.
std::string report_svg(const Report& report);

}  // namespace ffn
