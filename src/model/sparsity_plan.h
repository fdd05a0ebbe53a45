// Activation-sparsity plans: which method, the per-layer thresholds, and
// how a plan turns a dense Llama model into its sparse form
// (apply_sparsity). Plans come from calibration (transform/sparsify.h) or
// from a file that carries one (read_sparsity_plan; written by
// transform/sparse_file.h). The methods and their papers:
//   teal      TEAL (Liu et al. 2024): magnitude thresholds on the inputs of
//             every linear layer of a block; target = fraction of the
//             blocks' weights skipped; per-site sparsities from TEAL's greedy
//             allocation.
//   cats      CATS (Lee et al. 2024): threshold on |SiLU(gate)|; target =
//             fraction of FFN neurons off.
//   chess     CHESS (He et al. 2024): channel-wise thresholds on |SiLU(gate)|
//             from the importance |SiLU(g_i)|·E|u_i|, plus its selective
//             sparsification of attention (q and o inputs at the same target:
//             the paper's CHESS+ configuration).
//   chess-ffn CHESS's channel-wise FFN thresholds alone (the paper's CHESS;
//             compares with cats at equal FFN sparsity: per channel vs per tensor).
//   stat-topk Spark Transformer's statistical top-k on the gate (no
//             calibration); target = fraction of FFN neurons off.
//   topk      exact per-token top-k on the gate (the baseline for stat-topk).
//
// In a file (n = layers, h = FFN width), matrices read by input are stored
// transposed (transposed_tensor_name) and the thresholds as metadata:
//   ffn.sparsity.method             string   teal|cats|chess|chess-ffn|stat-topk|topk
//   ffn.sparsity.target             f32
//   ffn.sparsity.attn_in_threshold  f32[n]   |x| thresholds (0 = dense)
//   ffn.sparsity.attn_out_threshold f32[n]
//   ffn.sparsity.ffn_in_threshold   f32[n]   TEAL
//   ffn.sparsity.ffn_mid_threshold  f32[n]   TEAL
//   ffn.sparsity.attn_q_only        bool     CHESS: only q's input sparse
//   ffn.sparsity.gate_rule          string   none|cats|chess|stat-topk|topk
//   ffn.sparsity.gate_threshold     f32[n]   cats
//   ffn.sparsity.channel_thresholds f32[n*h] chess
//   ffn.sparsity.keep_fraction      f32      stat-topk, topk
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "ffn/gate_sparse_ffn.h"
#include "ffn/sparsity_meter.h"
#include "ffn/teal_ffn.h"
#include "io/model_source.h"

namespace ffn {

class LlamaModel;
class ThreadPool;
struct LlamaConfig;

inline constexpr const char* kSparsityKeyPrefix = "ffn.sparsity.";

enum class SparsityMethod { Teal, Cats, Chess, ChessFfn, StatTopK, TopK };

struct SparsitySpec {
  SparsityMethod method = SparsityMethod::Teal;
  double target = 0;  // in [0, 1)
};

// "teal:0.5" etc.; errors name `where` and list the methods.
SparsitySpec parse_sparsity_spec(const std::string& text, const std::string& where = "--sparsity");
std::string sparsity_method_name(SparsityMethod m);
bool needs_calibration(SparsityMethod m);

struct LayerSparsityPlan {
  // Fraction of each site's activations to drop (TEAL; CHESS attention).
  double attn_in = 0, attn_out = 0, ffn_in = 0, ffn_mid = 0;
  // Thresholds on |x| for those sites (0 = dense).
  float attn_in_threshold = 0, attn_out_threshold = 0;
  bool attn_q_only = false;
  TealThresholds teal;
  bool gate_sparse = false;  // the FFN becomes a GateSparseFfn with `gate`
  GateRule gate;
};

struct SparsityPlan {
  SparsitySpec spec;
  std::vector<LayerSparsityPlan> layers;
};

// Names of the matrices of layer l that the plan reads by input (stored
// transposed in a file).
std::vector<std::string> transposed_matrices(const LayerSparsityPlan& p, size_t l);

// Replaces the layers' FFNs and attention projections by their sparse
// forms; layers whose plan is all-dense are left untouched (so a target of 0
// runs the dense model exactly). Transposed matrices come from the file when
// it stores them (LlamaModel::pretransposed), else are made here. Returns the
// meter the sparse parts count into (keep it alive as long as the model runs).
std::unique_ptr<SparsityMeter> apply_sparsity(LlamaModel& model, const SparsityPlan& plan, ThreadPool* pool);

// The plan a file carries, or nullopt. Errors name the file and the key.
std::optional<SparsityPlan> read_sparsity_plan(const ModelSource& src, const LlamaConfig& config);

}  // namespace ffn
