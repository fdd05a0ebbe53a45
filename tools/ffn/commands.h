// The ffn subcommands. Each registers its flags on the CLI11 app and returns
// the function that runs it; main() catches ffn::Error, prints one line and
// exits 1.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace ffn::cli {

using Command = std::function<int()>;

Command add_generate(CLI::App& app);
Command add_perplexity(CLI::App& app);
Command add_inspect(CLI::App& app);
Command add_convert(CLI::App& app);
Command add_quantize(CLI::App& app);
Command add_synth(CLI::App& app);
Command add_bench(CLI::App& app);
Command add_calibrate(CLI::App& app);
Command add_report(CLI::App& app);

}  // namespace ffn::cli
