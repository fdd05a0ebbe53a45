#include <fmt/format.h>

#include <memory>

#include "commands.h"
#include "core/thread_pool.h"
#include "eval/report.h"
#include "kernels/row_placement.h"
#include "progress.h"
#include "sparsity_flags.h"

namespace ffn::cli {

namespace {
struct ReportCliOptions {
  ReportOptions report;
  std::string variants = "dense,q8_0,sparse:teal:0.5,sparse:cats:0.5";
  std::string out;
  int threads = 0;
  std::string sparse_rows = "auto";
  bool no_bench = false;
  bool no_progress = false;
};

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    const size_t comma = s.find(',', start);
    out.push_back(s.substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  return out;
}
}  // namespace

Command add_report(CLI::App& app) {
  auto o = std::make_shared<ReportCliOptions>();
  auto& r = o->report;
  app.add_option("-m,--model", r.model, "model whose quality is measured")->required();
  app.add_option("-z,--tokenizer", r.tokenizer, "tokenizer file");
  app.add_option("-f,--file", r.text, "text for perplexity / KL / top-1")->required();
  app.add_option("--variants", o->variants,
                 "comma-separated variants: dense, f16, bf16, q8_0, q4_0, sparse:METHOD:TARGET, moe:E/K[/cluster|coact|taylor][/sS], "
                 "upcycle:E/K, average; steps joined by '+' (e.g. q8_0+moe:16/4/coact)")
      ->capture_default_str();
  app.add_option("--bench-model", r.bench_model, "model for the speed columns (default: -m)");
  app.add_option("--calib-file", r.calib_text, "calibration text (default: the part of -f after the scored tokens)");
  app.add_option("-o,--output", o->out, "output directory")->required();
  app.add_option("-c,--ctx", r.ctx, "perplexity window")->capture_default_str()->check(CLI::Range(2, 1 << 20));
  app.add_option("--tokens", r.tokens, "tokens scored for quality")->capture_default_str()->check(CLI::Range(1, 1 << 30));
  app.add_option("--calib-tokens", r.calib_tokens, "calibration tokens")->capture_default_str()->check(CLI::Range(1, 1 << 30));
  app.add_option("-p,--n-prompt", r.bench.prefill_tokens, "bench prefill tokens")->capture_default_str();
  app.add_option("-n,--n-gen", r.bench.decode_tokens, "bench decode tokens")->capture_default_str();
  app.add_option("-r,--repetitions", r.bench.repetitions, "bench repetitions")->capture_default_str();
  app.add_option("-t,--threads", o->threads, "threads (default: all cores)")->check(CLI::Range(0, 1024));
  add_sparse_rows_option(app, o->sparse_rows);
  app.add_flag("--no-bench", o->no_bench, "quality columns only");
  app.add_flag("--no-progress", o->no_progress, "no progress bar");
  return [o] {
    if (o->threads > 0) ThreadPool::set_global_threads(o->threads);
    set_sparse_row_placement(*parse_row_placement(o->sparse_rows));
    ThreadPool& pool = ThreadPool::global();
    o->report.variants = split_commas(o->variants);
    o->report.run_bench = !o->no_bench;
    std::unique_ptr<Progress> bar;
    std::string stage;
    const Report rep = run_report(o->report, pool, [&](const std::string& s, int64_t done, int64_t total) {
      if (s != stage) {
        if (bar) bar->finish();
        bar = std::make_unique<Progress>(s, !o->no_progress);
        stage = s;
      }
      bar->update(done, total);
    });
    if (bar) bar->finish();
    write_report(rep, o->out);
    fmt::print("{:<28} {:>10} {:>10} {:>8} {:>9}", "variant", "PPL", "KL", "top-1", "sparsity");
    if (!o->no_bench) fmt::print(" {:>10} {:>8}", "decode/s", "speedup");
    fmt::print("\n");
    for (const auto& row : rep.rows) {
      fmt::print("{:<28} {:>10.4f} {:>10.5f} {:>7.2f}% {:>8.1f}%", row.variant, row.ppl, row.kl, 100 * row.top1,
                 100 * row.achieved_sparsity);
      if (!o->no_bench) fmt::print(" {:>10.2f} {:>7.2f}x", row.decode_tok_s, row.decode_speedup);
      fmt::print("\n");
    }
    fmt::print("wrote {0}/report.md, {0}/report.csv, {0}/report.svg\n", o->out);
    return 0;
  };
}

}  // namespace ffn::cli
