#include "eval/report.h"

#include <fmt/format.h>

#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>

#include "core/error.h"
#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "eval/perplexity.h"
#include "ffn/sparsity_meter.h"
#include "model/loaded_model.h"
#include "transform/activation_stats.h"
#include "transform/ffn_activations.h"
#include "transform/ffn_transform.h"
#include "transform/retype.h"
#include "transform/sparsify.h"

namespace ffn {

VariantSpec parse_variant(const std::string& text) {
  VariantSpec v;
  v.text = text;
  size_t start = 0;
  const std::string expected =
      "dense, a type (f32, f16, bf16, q8_0, q4_0), sparse:METHOD:TARGET, moe:E/K[/split][/sS], upcycle:E/K or "
      "average, joined by '+'";
  while (start <= text.size()) {
    const size_t plus = text.find('+', start);
    const std::string step = text.substr(start, plus == std::string::npos ? std::string::npos : plus - start);
    if (step == "dense") {
    } else if (auto t = parse_dtype(step)) {
      v.type = *t;
    } else if (is_ffn_transform(step)) {
      if (!v.ffn.empty()) fail("--variants", "variant \"" + text + "\"", "at most one FFN transform", "two");
      v.ffn = step;
      ffn_transform_needs_calibration(step, "--variants " + text);  // validates
    } else if (step.rfind("sparse:", 0) == 0) {
      v.sparsity = step.substr(7);
      parse_sparsity_spec(v.sparsity, "--variants " + text);  // validates
    } else {
      fail("--variants", "variant \"" + text + "\"", expected, "step \"" + step + "\"");
    }
    if (plus == std::string::npos) break;
    start = plus + 1;
  }
  return v;
}

namespace {

double current_rss_mb() {
  std::ifstream f("/proc/self/statm");
  uint64_t size = 0, resident = 0;
  f >> size >> resident;
  return double(resident) * 4096.0 / 1048576.0;
}

// A variant built from a loaded source: the model, and the meter of its
// sparse parts (null when dense).
struct BuiltVariant {
  std::optional<ModelSource> transformed;  // keeps the new FFN weights alive
  std::optional<ModelSource> retyped;      // keeps re-encoded weights alive
  std::unique_ptr<LlamaModel> model;
  std::unique_ptr<SparsityMeter> meter;
};

BuiltVariant build_variant(const ModelSource& src, const VariantSpec& v, const ActivationStats* stats,
                           const FfnActivations* acts, const std::string& stats_name, ThreadPool& pool) {
  BuiltVariant b;
  const ModelSource* source = &src;
  if (!v.ffn.empty()) {
    const LlamaModel as_loaded(src, LlamaModel::Layout::AsStored);
    b.transformed = transform_ffn(src, as_loaded, v.ffn, acts, pool);
    source = &*b.transformed;
  }
  if (v.type) {
    b.retyped = retype(*source, *v.type);
    source = &*b.retyped;
  }
  b.model = std::make_unique<LlamaModel>(*source);
  if (!v.sparsity.empty()) {
    const SparsityPlan plan = plan_sparsity(parse_sparsity_spec(v.sparsity), stats, *b.model, stats_name);
    b.meter = apply_sparsity(*b.model, plan, &pool);
  }
  return b;
}

bool any_calibrated(const std::vector<VariantSpec>& vs) {
  for (const auto& v : vs)
    if (!v.sparsity.empty() && needs_calibration(parse_sparsity_spec(v.sparsity).method)) return true;
  return false;
}

bool any_recorded(const std::vector<VariantSpec>& vs) {
  for (const auto& v : vs)
    if (!v.ffn.empty() && ffn_transform_needs_calibration(v.ffn)) return true;
  return false;
}

}  // namespace

Report run_report(const ReportOptions& o, ThreadPool& pool,
                  const std::function<void(const std::string&, int64_t, int64_t)>& progress) {
  Report rep;
  rep.options = o;
  if (o.variants.empty()) throw Error("report: --variants is empty");
  std::vector<VariantSpec> specs;
  for (const auto& t : o.variants) specs.push_back(parse_variant(t));
  auto report = [&](const std::string& stage) {
    return [&, stage](int64_t d, int64_t t) {
      if (progress) progress(stage, d, t);
    };
  };

  LoadedModel dense = load_model(o.model, o.tokenizer);
  const Tokenizer& tok = dense.require_tokenizer();
  const auto stream = tok.encode(read_text_file(o.text));
  const int64_t ctx = std::min<int64_t>(o.ctx, dense.model->config().context_length);
  const int64_t scored = std::min<int64_t>(o.tokens, static_cast<int64_t>(stream.size()));
  rep.tokens_scored = scored;

  // Calibration on text the quality figures do not score, where there is any.
  std::optional<ActivationStats> stats;
  std::optional<FfnActivations> acts;
  const bool calibrate = any_calibrated(specs), record = any_recorded(specs);
  std::vector<int32_t> calib_stream;
  if (calibrate || record) {
    if (!o.calib_text.empty()) {
      calib_stream = tok.encode(read_text_file(o.calib_text));
      rep.calibration_note = fmt::format("calibrated on {} ({} tokens)", o.calib_text,
                                         std::min<int64_t>(o.calib_tokens, calib_stream.size()));
    } else if (static_cast<int64_t>(stream.size()) - scored >= 1024) {
      calib_stream.assign(stream.begin() + scored, stream.end());
      rep.calibration_note = fmt::format("calibrated on the tokens of {} after the {} scored ones ({} tokens)",
                                         o.text, scored, std::min<int64_t>(o.calib_tokens, calib_stream.size()));
    } else {
      calib_stream = stream;
      rep.calibration_note = fmt::format("calibrated on the scored text itself ({} too short to hold out)", o.text);
    }
    const int64_t sampled = std::clamp<int64_t>((1 << 20) / dense.model->config().hidden_dim, 64, 4096);
    if (calibrate)
      stats = collect_activation_stats(*dense.model, calib_stream, tok.bos(), ctx, o.calib_tokens, sampled, pool,
                                       report("calibrate"));
    if (record)
      acts = record_ffn_activations(*dense.model, calib_stream, tok.bos(), ctx,
                                    ffn_calibration_tokens(*dense.model, o.calib_tokens), pool);
  }

  for (const auto& v : specs) {
    if (progress) progress("build " + v.text, 0, 1);
    BuiltVariant b =
        build_variant(dense.source, v, stats ? &*stats : nullptr, acts ? &*acts : nullptr, "calibration", pool);
    ReportRow row;
    row.variant = v.text;
    row.description = b.model->layers().front().ffn->describe();
    const PerplexityResult q =
        perplexity(*b.model, stream, tok.bos(), ctx, pool, report("quality " + v.text), dense.model.get(), scored);
    row.ppl = q.ppl;
    row.nll = q.nll;
    row.kl = q.kl;
    row.top1 = q.top1_agree;
    row.achieved_sparsity = b.meter ? b.meter->achieved_sparsity() : 0.0;
    row.moe_experts_per_token = b.model->moe_meter().ffn_experts_per_token();
    rep.rows.push_back(row);
  }

  if (o.run_bench) {
    std::optional<LoadedModel> bench_holder;
    const bool separate = !o.bench_model.empty() && o.bench_model != o.model;
    if (separate) bench_holder = load_model(o.bench_model);
    LoadedModel& bench = separate ? *bench_holder : dense;
    // The bench model needs its own thresholds: calibrate it on the same text
    // (its own tokenizer) when it is a different model.
    std::optional<ActivationStats> bench_stats;
    std::optional<FfnActivations> bench_acts;
    if ((calibrate || record) && separate) {
      const Tokenizer& bt = bench.require_tokenizer();
      const auto bstream = bt.encode(read_text_file(o.calib_text.empty() ? o.text : o.calib_text));
      const int64_t bctx = std::min<int64_t>(ctx, bench.model->config().context_length);
      const int64_t sampled = std::clamp<int64_t>((1 << 20) / bench.model->config().hidden_dim, 64, 4096);
      if (calibrate)
        bench_stats = collect_activation_stats(*bench.model, bstream, bt.bos(), bctx,
                                               std::min<int64_t>(o.calib_tokens, 1024), sampled, pool,
                                               report("calibrate bench model"));
      // Speed only: a few hundred tokens fit routers well enough to route.
      if (record)
        bench_acts = record_ffn_activations(*bench.model, bstream, bt.bos(), bctx,
                                            ffn_calibration_tokens(*bench.model, 512), pool);
    }
    const ActivationStats* bs = separate ? (bench_stats ? &*bench_stats : nullptr) : (stats ? &*stats : nullptr);
    const FfnActivations* ba = separate ? (bench_acts ? &*bench_acts : nullptr) : (acts ? &*acts : nullptr);
    for (size_t i = 0; i < specs.size(); ++i) {
      if (progress) progress("bench " + specs[i].text, int64_t(i), int64_t(specs.size()));
      BuiltVariant b = build_variant(bench.source, specs[i], bs, ba, "bench calibration", pool);
      SpeedBenchParams p = o.bench;
      p.sparsity = b.meter.get();
      const SpeedBenchResult r = run_speed_bench(*b.model, pool, p);
      ReportRow& row = rep.rows[i];
      row.decode_tok_s = r.decode_tok_s;
      row.prefill_tok_s = r.prefill_tok_s;
      row.weight_bytes_per_token = r.weight_bytes_per_token;
      row.bench_sparsity = r.achieved_sparsity;
      row.rss_mb = current_rss_mb();
      row.decode_speedup = rep.rows[0].decode_tok_s > 0 ? r.decode_tok_s / rep.rows[0].decode_tok_s : 0;
    }
  }
  return rep;
}

void write_report(const Report& rep, const std::string& dir) {
  std::error_code ec;
  std::filesystem::create_directories(dir, ec);
  if (ec) fail(dir, "output directory", "a directory that can be created", ec.message());
  const auto& o = rep.options;
  auto write = [&](const std::string& name, const std::string& text) {
    const std::string path = (std::filesystem::path(dir) / name).string();
    std::ofstream f(path, std::ios::binary);
    f << text;
    if (!f) fail(path, "write", "a writable file", "an I/O error");
  };
  const bool bench = o.run_bench;
  const std::string bench_model = o.bench_model.empty() ? o.model : o.bench_model;
  std::string md = fmt::format("# ffn report\n\nQuality: `{}` on `{}` ({} tokens scored, ctx {}, the perplexity "
                               "protocol of `ffn perplexity`); KL and top-1 against the first variant's dense "
                               "model.\n",
                               o.model, o.text, rep.tokens_scored, o.ctx);
  if (!rep.calibration_note.empty())
    md += fmt::format("Calibration (sparse thresholds, MoE splits and routers): {}.\n", rep.calibration_note);
  if (bench)
    md += fmt::format("Speed: `{}`{}, {} threads, pp{} / tg{}, median of {} (`ffn bench`); decode speed-up vs the "
                      "first variant in the same run.\n",
                      bench_model, bench_model == o.model ? "" : " (a different model of the same architecture: speed only)",
                      ThreadPool::global().size(), o.bench.prefill_tokens, o.bench.decode_tokens, o.bench.repetitions);
  md += "\n| variant | FFN (layer 0) | PPL | KL (nats) | top-1 agree | sparsity (text) | experts/token (text) |";
  if (bench) md += " decode tok/s | speed-up | prefill tok/s | MiB read/token | sparsity (bench) | RSS MiB |";
  md += "\n|---|---|---|---|---|---|---|";
  if (bench) md += "---|---|---|---|---|---|";
  md += "\n";
  std::string csv = "variant,ffn,ppl,nll,kl,top1_agree,achieved_sparsity,decode_tok_s,decode_speedup,prefill_tok_s,"
                    "weight_bytes_per_token,bench_sparsity,rss_mb,moe_experts_per_token\n";
  for (const auto& r : rep.rows) {
    md += fmt::format("| {} | {} | {:.4f} | {:.5f} | {:.2f}% | {:.1f}% | {} |", r.variant, r.description, r.ppl, r.kl,
                      100 * r.top1, 100 * r.achieved_sparsity,
                      r.moe_experts_per_token > 0 ? fmt::format("{:.2f}", r.moe_experts_per_token) : "-");
    if (bench)
      md += fmt::format(" {:.2f} | {:.2f}x | {:.1f} | {:.1f} | {:.1f}% | {:.0f} |", r.decode_tok_s, r.decode_speedup,
                        r.prefill_tok_s, r.weight_bytes_per_token / 1048576.0, 100 * r.bench_sparsity, r.rss_mb);
    md += "\n";
    csv += fmt::format("\"{}\",\"{}\",{:.6f},{:.6f},{:.6f},{:.6f},{:.6f},{:.4f},{:.4f},{:.4f},{},{:.6f},{:.1f},{:.4f}\n",
                       r.variant, r.description, r.ppl, r.nll, r.kl, r.top1, r.achieved_sparsity, r.decode_tok_s,
                       r.decode_speedup, r.prefill_tok_s, r.weight_bytes_per_token, r.bench_sparsity, r.rss_mb,
                       r.moe_experts_per_token);
  }
  if (bench) md += "\n![quality vs decode speed](report.svg)\n";
  write("report.md", md);
  write("report.csv", csv);
  write("report.svg", report_svg(rep));
}

}  // namespace ffn
