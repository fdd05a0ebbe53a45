// Calibrated activation sparsity: turn activation statistics
// (transform/activation_stats.h) into a SparsityPlan (model/sparsity_plan.h)
// for a target, and the one-call path behind --sparsity/--calib.
#pragma once

#include <memory>
#include <string>

#include "model/sparsity_plan.h"

namespace ffn {

struct ActivationStats;
struct LayerActivationStats;

// stats may be null for methods that need no calibration. Errors (missing
// statistics, a layer count or width that does not match) name `stats_path`.
SparsityPlan plan_sparsity(const SparsitySpec& spec, const ActivationStats* stats, const LlamaModel& model,
                           const std::string& stats_path = "statistics");

// TEAL's greedy allocation for one block: starting from 0, repeatedly raise
// the sparsity of the one site whose step adds the least estimated error per
// weight skipped (each step skips 0.5% of the block's weights), until the
// block's weight-weighted sparsity reaches `target`. Sites: attn_in (q,k,v),
// attn_out (o), ffn_in (gate,up), ffn_mid (down). The error of a site is
// the relative output error of its own linear layers (activation_stats.h):
// TEAL measures the block's output error instead, which needs a block
// forward per candidate step; this estimate needs none.
void plan_teal_layer(const LayerActivationStats& stats, const LlamaModel& model, double target,
                     LayerSparsityPlan& out);

// The plan for --sparsity SPEC --calib FILE: FILE is activation statistics
// from `ffn calibrate` (JSON) or a text to calibrate on now (calib_tokens
// tokens, with `tokenizer`). The model must be dense.
SparsityPlan calibrated_plan(LlamaModel& model, const std::string& spec, const std::string& calib_path,
                             ThreadPool* pool, const class Tokenizer* tokenizer = nullptr, int64_t calib_tokens = 8192);

// calibrated_plan + apply_sparsity: what --sparsity/--calib do at run time.
std::unique_ptr<SparsityMeter> sparsify(LlamaModel& model, const std::string& spec, const std::string& calib_path,
                                        ThreadPool* pool, const class Tokenizer* tokenizer = nullptr,
                                        int64_t calib_tokens = 8192);

}  // namespace ffn
