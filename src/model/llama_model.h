// The Llama-family transformer: token embedding, n_layers of
// (RMSNorm -> grouped-query attention with RoPE -> residual,
//  RMSNorm -> FeedForward -> residual), final RMSNorm, output head.
//
// forward() runs a batch of consecutive tokens of one sequence: prefill
// passes the whole prompt (matrix-matrix products), decode passes one token.
// Each layer owns its FeedForward, which transforms may replace.
#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "ffn/activation_observer.h"
#include "ffn/feed_forward.h"
#include "ffn/moe_meter.h"
#include "io/model_source.h"
#include "kernels/weight_matrix.h"
#include "model/attention_sparsity.h"
#include "model/by_section.h"
#include "model/kv_cache.h"
#include "model/llama_config.h"

namespace ffn {

class ThreadPool;

// Wall time spent per part of the forward pass, accumulated while a profile
// is attached (set_profile). "attention" is norm + q/k/v/o projections +
// RoPE + attention; "ffn" is norm + FeedForward; "other" is embedding, final
// norm and output head.
struct ForwardProfile {
  double attention_s = 0;
  double ffn_s = 0;
  double other_s = 0;
};

struct LlamaLayer {
  std::vector<float> attn_norm;
  std::vector<float> ffn_norm;
  WeightMatrix wq, wk, wv, wo;
  // Projection biases (qwen2 has q/k/v ones); empty where the file has none.
  std::vector<float> bq, bk, bv, bo;
  std::unique_ptr<FeedForward> ffn;
  std::unique_ptr<AttentionSparsity> attn_sparsity;  // null: dense projections
};

class LlamaModel {
 public:
  // How the weights are held. Packed: Q8_0/Q4_0 matrices that matmul reads
  // are also re-laid for the VNNI kernel (kernels/packed_quant.h; the file
  // pages they came from leave the resident set). AsStored: every matrix
  // is read in place, for a model whose weights are only read (a transform's
  // view of its input), where packing would cost time and memory for nothing.
  enum class Layout { Packed, AsStored };

  // Checks every tensor's presence and shape; errors name the file and tensor.
  explicit LlamaModel(const ModelSource& src, Layout layout = Layout::Packed);

  const LlamaConfig& config() const { return config_; }
  std::vector<LlamaLayer>& layers() { return layers_; }
  const std::vector<LlamaLayer>& layers() const { return layers_; }

  KvCache make_cache(int64_t capacity) const;

  // Runs tokens[0..n) at positions cache.size() .. cache.size()+n-1 and
  // advances the cache. logits gets one row per token if all_logits, else
  // only the last token's row. Throws ffn::Error for a token id outside the
  // vocabulary or a batch that overflows the cache.
  void forward(const int32_t* tokens, int64_t n, KvCache& cache, Tensor& logits, bool all_logits,
               ThreadPool& pool);

  // Bytes of weights read to decode one token: every layer matrix and the
  // output head (plus one embedding row).
  uint64_t weight_bytes() const;
  // The same bytes by the part of the forward pass that reads them, as
  // ForwardProfile times them (whole numbers: exact in a double).
  BySection weight_bytes_by_section() const;

  // Matrices the file stores only transposed (see transposed_tensor_name),
  // keyed by the original name; the layer's own WeightMatrix then has its
  // shape but no data, and the file's sparsity plan must be applied
  // (transform/sparsify.h) before forward().
  const WeightMatrix* pretransposed(const std::string& name) const;
  bool needs_sparsity_plan() const { return needs_sparsity_plan_; }
  void set_sparsity_plan_applied() { needs_sparsity_plan_ = false; }

  // Where the routed slots of the MoE layers went (all zero for a dense
  // model); callers reset it around what they measure.
  MoeMeter& moe_meter() { return *moe_meter_; }
  const MoeMeter& moe_meter() const { return *moe_meter_; }
  bool has_moe() const;

  void set_profile(ForwardProfile* profile) { profile_ = profile; }
  // Reports every layer's activations to `observer` (null: none).
  void set_observer(ActivationObserver* observer) { observer_ = observer; }

 private:
  // Projections plus biases; the *_weights parts are the (maybe sparse)
  // matrix products alone.
  void project_qkv(LlamaLayer& layer, int64_t n, ThreadPool& pool);
  void project_output(LlamaLayer& layer, int64_t n, ThreadPool& pool);
  void project_qkv_weights(LlamaLayer& layer, int64_t n, ThreadPool& pool);
  void project_output_weights(LlamaLayer& layer, int64_t n, ThreadPool& pool);
  void attention(LlamaLayer& layer, int64_t layer_index, int64_t n, KvCache& cache, ThreadPool& pool);

  LlamaConfig config_;
  WeightMatrix token_embd_;
  std::vector<LlamaLayer> layers_;
  std::vector<float> output_norm_;
  WeightMatrix output_;

  // Activation buffers, reused across calls.
  Tensor x_, xn_, q_, k_, v_, att_, proj_, ffn_out_;
  Tensor rope_angles_;  // [n, rope_dim]: each new token's RoPE cos / sin, for all layers
  Tensor qkv_;  // [n, dim + 2 kv_dim]: the fused sparse q/k/v product (attention_sparsity.h)
  Scratch scratch_;
  std::vector<std::vector<float>> score_rows_;  // per thread
  ForwardProfile* profile_ = nullptr;
  std::map<std::string, WeightMatrix> pretransposed_;
  bool needs_sparsity_plan_ = false;
  ActivationObserver* observer_ = nullptr;
  std::unique_ptr<MoeMeter> moe_meter_ = std::make_unique<MoeMeter>();
};

}  // namespace ffn
