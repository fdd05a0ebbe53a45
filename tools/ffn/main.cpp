// ffn: command-line front end. Parses flags, prints, draws progress; all
// logic lives in the library.
#include <fmt/format.h>

#include <cstdio>
#include <map>

#include "commands.h"
#include "core/error.h"

namespace {

// Errors print on exactly one line, but names inside a message come from
// files (GGUF keys, tensor names, JSON keys, paths) and may hold control
// characters: show those escaped.
std::string one_line(const std::string& message) {
  std::string out;
  for (unsigned char c : message) {
    if (c == '\n') out += "\\n";
    else if (c == '\r') out += "\\r";
    else if (c == '\t') out += "\\t";
    else if (c < 0x20 || c == 0x7f) out += fmt::format("\\x{:02x}", c);
    else out += static_cast<char>(c);
  }
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"ffn.cpp: run, measure and transform the feed-forward networks of transformers"};
  app.require_subcommand(1);
  std::map<CLI::App*, ffn::cli::Command> commands;
  auto add = [&](auto&& adder, const char* name, const char* help) {
    CLI::App* sub = app.add_subcommand(name, help);
    commands[sub] = adder(*sub);
  };
  add(ffn::cli::add_generate, "generate", "generate text from a prompt");
  add(ffn::cli::add_perplexity, "perplexity", "perplexity of a model on a text file");
  add(ffn::cli::add_inspect, "inspect", "architecture, hyper-parameters, tokenizer and tensors of a model");
  add(ffn::cli::add_convert, "convert", "convert a model (llama2.c, safetensors, GGUF) to GGUF");
  add(ffn::cli::add_bench, "bench", "measure prefill and decode speed against the machine's bandwidth");
  add(ffn::cli::add_synth, "synth", "write a random-weight model of a real shape (for speed measurements)");
  add(ffn::cli::add_calibrate, "calibrate", "collect activation statistics on a text (for --sparsity thresholds)");
  add(ffn::cli::add_report, "report", "quality vs speed vs memory of model variants: table, CSV and plot");
  add(ffn::cli::add_quantize, "quantize", "write a model with its weights as Q8_0, Q4_0, BF16, F16 or F32");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  try {
    for (auto& [sub, run] : commands)
      if (sub->parsed()) return run();
  } catch (const ffn::Error& e) {
    std::fflush(stdout);
    fmt::print(stderr, "error: {}\n", one_line(e.what()));
    return 1;
  } catch (const std::bad_alloc&) {
    std::fflush(stdout);
    fmt::print(stderr, "error: out of memory\n");
    return 1;
  } catch (const std::exception& e) {
    // Last resort: every input error should already be an ffn::Error.
    std::fflush(stdout);
    fmt::print(stderr, "error: internal: {}\n", one_line(e.what()));
    return 1;
  }
  return 0;
}
