#include <fmt/format.h>

#include <algorithm>
#include <memory>
#include <optional>

#include "commands.h"
#include "run_flags.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "core/timer.h"
#include "eval/speed_bench.h"
#include "kernels/amx_packed.h"
#include "core/cpu_vendor.h"
#include "kernels/row_placement.h"
#include "model/loaded_model.h"

namespace ffn::cli {

namespace {
struct BenchOptions {
  RunFlags run;  // -t, --moe-top-k, --sparsity
  std::string model;
  SpeedBenchParams params;
  bool json = false;
  bool vs_dense = false;
};
}  // namespace

Command add_bench(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  app.add_option("-m,--model", o->model, "model file")->required();
  app.add_option("-p,--n-prompt", o->params.prefill_tokens, "prefill tokens")->capture_default_str();
  app.add_option("-n,--n-gen", o->params.decode_tokens, "decode tokens")->capture_default_str();
  app.add_option("-r,--repetitions", o->params.repetitions, "repetitions (median reported)")->capture_default_str();
  app.add_flag("--json", o->json, "print one JSON line on stdout");
  app.add_flag("--vs-dense", o->vs_dense,
               "also load the file without --sparsity/--moe-top-k and compare decode with it in alternating rounds "
               "(-r rounds of -n tokens each)");
  app.add_flag("--vs-read", o->params.vs_read,
               "also decode -n x -r more tokens, each followed by a plain read of its weight bytes, and report "
               "decode's speed as a fraction of the read's (immune to the machine's drift)");
  o->run.add(app);
  return [o] {
    if (o->vs_dense && o->run.sparsity.spec.empty() && o->run.moe.top_k == 0)
      throw Error("bench: --vs-dense compares the run's --sparsity or --moe-top-k with the same file without them; "
                  "give one of them");
    Timer load;
    LoadedRun run = o->run.load(o->model);
    ThreadPool& pool = ThreadPool::global();
    LoadedModel& lm = run.lm;
    SparsityMeter* meter = run.meter;
    o->params.sparsity = meter;
    const double load_s = load.seconds();
    const AmxSupport& amx = amx_support();  // (decided in RunFlags::load)
    const SpeedBenchResult r = run_speed_bench(*lm.model, pool, o->params);
    const double fraction = r.bandwidth_fraction;
    std::optional<DecodeComparison> vs;
    if (o->vs_dense) {
      RunFlags plain = o->run;
      plain.sparsity = {};
      plain.sparsity.rows = o->run.sparsity.rows;  // (loading sets the process-wide placement: keep the user's)
      plain.moe = {};
      LoadedRun dense = plain.load(o->model);
      vs = compare_decode(*dense.lm.model, *lm.model, pool, o->params);
    }
    // Sparsity's bytes-read ratios, whole model and by section; 0 (not
    // printed) for MoE, whose weight_bytes() already counts only the top-k
    // experts.
    auto ratio = [&](double dense, double read) { return meter && read > 0 ? dense / read : 0.0; };
    const double ideal = ratio(double(r.dense_weight_bytes_per_token), double(r.weight_bytes_per_token));
    const double ideal_ffn = ratio(r.dense_bytes_per_token.ffn, r.bytes_per_token.ffn);
    const double ideal_attention = ratio(r.dense_bytes_per_token.attention, r.bytes_per_token.attention);
    std::string sites_json, sites_text;
    for (const auto& [kind, sparsity] : r.site_sparsity) {
      sites_json += fmt::format("{}\"{}\":{:.4f}", sites_json.empty() ? "" : ",", kind, sparsity);
      sites_text += fmt::format("{}{} {:.1f}%", sites_text.empty() ? "" : " | ", kind, 100 * sparsity);
    }
    if (o->json) {
      fmt::print(
          "{{\"model\":\"{}\",\"threads\":{},\"prefill_tokens\":{},\"decode_tokens\":{},\"prefill_tok_s\":{:.3f},"
          "\"decode_tok_s\":{:.3f},\"peak_rss_mb\":{:.1f},\"weight_bytes_per_token\":{},\"decode_gb_s\":{:.3f},"
          "\"bandwidth_gb_s\":{:.3f},\"bandwidth_fraction\":{:.4f},\"decode_ffn_fraction\":{:.4f},"
          "\"decode_attention_fraction\":{:.4f},\"decode_other_fraction\":{:.4f},\"ffn_bytes_per_token\":{:.0f},"
          "\"attention_bytes_per_token\":{:.0f},\"other_bytes_per_token\":{:.0f},\"decode_ffn_gb_s\":{:.3f},"
          "\"decode_attention_gb_s\":{:.3f},\"decode_other_gb_s\":{:.3f},\"amx\":{}{}{}{}{}}}\n",
          o->model, pool.size(), o->params.prefill_tokens, o->params.decode_tokens, r.prefill_tok_s, r.decode_tok_s,
          r.peak_rss_mb, r.weight_bytes_per_token, r.decode_gb_s, r.bandwidth_gb_s, fraction, r.decode_ffn_fraction,
          r.decode_attention_fraction, r.decode_other_fraction, r.bytes_per_token.ffn, r.bytes_per_token.attention,
          r.bytes_per_token.other, r.decode_gb_s_by_section.ffn, r.decode_gb_s_by_section.attention,
          r.decode_gb_s_by_section.other, amx.in_use,
          r.vs_read_tokens ? fmt::format(",\"vs_read_tokens\":{},\"vs_read\":{:.4f},\"vs_read_gb_s\":{:.3f}",
                                         r.vs_read_tokens, r.vs_read, r.vs_read_gb_s)
                           : std::string(),
          meter ? fmt::format(",\"sparsity\":\"{}\",\"achieved_sparsity\":{:.4f},\"dense_weight_bytes_per_token\":{},"
                              "\"site_sparsity\":{{{}}},\"sparse_rows\":\"{}\"",
                              run.sparsity_label, r.achieved_sparsity, r.dense_weight_bytes_per_token, sites_json,
                              row_placement_name(sparse_row_placement()))
                : std::string(),
          r.moe_top_k ? fmt::format(",\"moe_top_k\":{},\"moe_experts_per_token\":{:.4f}", r.moe_top_k,
                                    r.moe_experts_per_token)
                      : std::string(),
          vs ? fmt::format(",\"vs_dense_rounds\":{},\"dense_decode_tok_s\":{:.3f},\"variant_decode_tok_s\":{:.3f},"
                           "\"decode_speedup_vs_dense\":{:.4f},\"ffn_speedup_vs_dense\":{:.4f},"
                           "\"attention_speedup_vs_dense\":{:.4f}{}",
                           vs->rounds, vs->baseline_tok_s, vs->variant_tok_s, vs->speedup, vs->ffn_speedup,
                           vs->attention_speedup,
                           ideal > 0 ? fmt::format(",\"ideal_speedup_vs_dense\":{:.4f},"
                                                   "\"ideal_ffn_speedup_vs_dense\":{:.4f},"
                                                   "\"ideal_attention_speedup_vs_dense\":{:.4f}",
                                                   ideal, ideal_ffn, ideal_attention)
                                     : std::string())
             : std::string());
      return 0;
    }
    fmt::print("model            {} (loaded in {:.2f} s)\n", o->model, load_s);
    fmt::print("threads          {}\n", pool.size());
    fmt::print("AMX              {}: {}\n", amx.in_use ? "in use" : "not used", amx.reason);
    fmt::print("prefill          {:.1f} tok/s  (pp{}, median of {})\n", r.prefill_tok_s, o->params.prefill_tokens,
               o->params.repetitions);
    fmt::print("decode           {:.2f} tok/s  (tg{}, median of {})\n", r.decode_tok_s, o->params.decode_tokens,
               o->params.repetitions);
    fmt::print("decode time      FFN {:.0f}% | attention {:.0f}% | other {:.0f}%\n", 100 * r.decode_ffn_fraction,
               100 * r.decode_attention_fraction, 100 * r.decode_other_fraction);
    const BySection &b = r.bytes_per_token, &gb_s = r.decode_gb_s_by_section;
    fmt::print("decode reads     FFN {:.1f} MiB/token at {:.1f} GB/s | attention {:.1f} MiB at {:.1f} GB/s | other "
               "{:.1f} MiB at {:.1f} GB/s  (weights)\n",
               b.ffn / 1048576.0, gb_s.ffn, b.attention / 1048576.0, gb_s.attention, b.other / 1048576.0, gb_s.other);
    fmt::print("weights/token    {:.1f} MiB\n", r.weight_bytes_per_token / 1048576.0);
    if (meter) {
      fmt::print("sparsity         {}: achieved {:.1f}% during decode; {:.1f} of {:.1f} MiB/token read\n",
                 run.sparsity_label, 100 * r.achieved_sparsity, r.weight_bytes_per_token / 1048576.0,
                 r.dense_weight_bytes_per_token / 1048576.0);
      fmt::print("sparsity sites   {}  (activations dropped, all layers)\n", sites_text);
      if (sparse_row_placement() == RowPlacement::kPageEnds)
        fmt::print("sparse rows      those of at most 4 KiB each ending a page (--sparse-rows pages)\n");
      else if (sparse_row_placement() == RowPlacement::kAuto && cpu_is_intel())
        fmt::print("sparse rows      those of 2-4 KiB each ending a page (--sparse-rows auto, on this Intel CPU)\n");
    }
    if (r.moe_top_k)
      fmt::print("experts          top-{}: {:.2f} FFN experts run per token and MoE layer during decode\n", r.moe_top_k,
                 r.moe_experts_per_token);
    fmt::print("decode traffic   {:.2f} GB/s; read bandwidth {:.2f} GB/s (median of measurements between the "
               "repetitions)\n",
               r.decode_gb_s, r.bandwidth_gb_s);
    fmt::print("% of bandwidth   {:.0f}%  (median over repetitions, each against the bandwidth measured beside it)\n",
               100 * fraction);
    if (r.vs_read_tokens)
      fmt::print("vs read          decode at {:.2f} of a plain read of the same {:.1f} MiB, token by token (median "
                 "of {} tokens, each followed by its read; the reads ran at {:.1f} GB/s)\n",
                 r.vs_read, r.weight_bytes_per_token / 1048576.0, r.vs_read_tokens, r.vs_read_gb_s);
    if (vs)
      fmt::print("vs dense         decode {:.2f}x{}, FFN alone {:.2f}x{}, attention alone {:.2f}x{}; dense {:.2f} "
                 "tok/s against {:.2f} (medians of {} alternating rounds{})\n",
                 vs->speedup, ideal > 0 ? fmt::format(" (ideal {:.2f}x)", ideal) : std::string(), vs->ffn_speedup,
                 ideal > 0 ? fmt::format(" (ideal {:.2f}x)", ideal_ffn) : std::string(), vs->attention_speedup,
                 ideal > 0 ? fmt::format(" (ideal {:.2f}x)", ideal_attention) : std::string(), vs->baseline_tok_s,
                 vs->variant_tok_s, vs->rounds, ideal > 0 ? "; ideal: the ratio of weight bytes read" : "");
    fmt::print("peak RSS         {:.0f} MiB\n", r.peak_rss_mb);
    return 0;
  };
}

}  // namespace ffn::cli
