#include "model/llama_model.h"

#include <fmt/format.h>

#include <chrono>
#include <cmath>
#include <cstring>

#include "core/error.h"
#include "core/thread_pool.h"
#include "ffn/gated_ffn.h"
#include "ffn/sparse_batch.h"
#include "kernels/attention_head.h"
#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/packed_quant.h"
#include "kernels/sparse_matmul.h"
#include "model/moe_params.h"
#include "model/weights.h"

namespace ffn {

LlamaModel::LlamaModel(const ModelSource& src, Layout layout) : config_(LlamaConfig::from(src)) {
  const auto& c = config_;
  ThreadPool* pack_pool = layout == Layout::Packed ? &ThreadPool::global() : nullptr;
  auto packed = [&](WeightMatrix m) {
    if (pack_pool) pack_row_tiles(m, pack_pool);
    return m;
  };
  token_embd_ = load_matrix(src, "token_embd.weight", c.vocab_size, c.dim);
  output_norm_ = load_vector(src, "output_norm.weight", c.dim);
  // (Tied embeddings: the head's packed copy is its own; lookups read
  // token_embd_'s rows.)
  output_ = packed(src.find("output.weight") ? load_matrix(src, "output.weight", c.vocab_size, c.dim) : token_embd_);
  layers_.resize(static_cast<size_t>(c.n_layers));
  // A layer matrix, or only its shape when the file holds it transposed.
  auto matrix = [&](const std::string& name, int64_t rows, int64_t cols) {
    if (!src.find(name) && src.find(transposed_tensor_name(name))) {
      pretransposed_[name] = load_matrix(src, transposed_tensor_name(name), cols, rows);
      needs_sparsity_plan_ = true;
      WeightMatrix shape_only;
      shape_only.type = pretransposed_[name].type;
      shape_only.rows = rows;
      shape_only.cols = cols;
      return shape_only;
    }
    return packed(load_matrix(src, name, rows, cols));
  };
  const std::optional<MoeParams> moe = read_moe_params(src, c);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    auto name = [l](const char* what) { return fmt::format("blk.{}.{}.weight", l, what); };
    LlamaLayer& L = layers_[l];
    L.attn_norm = load_vector(src, name("attn_norm"), c.dim);
    L.ffn_norm = load_vector(src, name("ffn_norm"), c.dim);
    L.wq = matrix(name("attn_q"), c.dim, c.dim);
    L.wk = matrix(name("attn_k"), c.kv_dim, c.dim);
    L.wv = matrix(name("attn_v"), c.kv_dim, c.dim);
    L.wo = matrix(name("attn_output"), c.dim, c.dim);
    auto bias = [&](const char* what, int64_t n) {
      const std::string b = fmt::format("blk.{}.{}.bias", l, what);
      return src.find(b) ? load_vector(src, b, n) : std::vector<float>();
    };
    L.bq = bias("attn_q", c.dim);
    L.bk = bias("attn_k", c.kv_dim);
    L.bv = bias("attn_v", c.kv_dim);
    L.bo = bias("attn_output", c.dim);
    if (moe && (L.ffn = load_moe_layer(src, l, c, *moe, moe_meter_.get(), pack_pool))) continue;
    L.ffn = std::make_unique<GatedFfn>(matrix(name("ffn_gate"), c.hidden_dim, c.dim),
                                       matrix(name("ffn_up"), c.hidden_dim, c.dim),
                                       matrix(name("ffn_down"), c.dim, c.hidden_dim));
  }
}

const WeightMatrix* LlamaModel::pretransposed(const std::string& name) const {
  const auto it = pretransposed_.find(name);
  return it == pretransposed_.end() ? nullptr : &it->second;
}

KvCache LlamaModel::make_cache(int64_t capacity) const {
  return KvCache(config_.n_layers, capacity, config_.kv_dim);
}

BySection LlamaModel::weight_bytes_by_section() const {
  BySection b;
  b.other = double(output_.bytes() + token_embd_.row_bytes());
  for (const auto& L : layers_) {
    b.attention += double(L.wq.bytes() + L.wk.bytes() + L.wv.bytes() + L.wo.bytes());
    b.ffn += double(L.ffn->weight_bytes_per_token());
  }
  return b;
}

uint64_t LlamaModel::weight_bytes() const { return static_cast<uint64_t>(weight_bytes_by_section().total()); }

bool LlamaModel::has_moe() const {
  for (const auto& L : layers_)
    if (dynamic_cast<const MoeFfn*>(L.ffn.get())) return true;
  return false;
}

namespace {

// rows[t] += bias for each of n rows (no-op without a bias).
void add_bias(Tensor& rows, int64_t n, const std::vector<float>& bias) {
  if (bias.empty()) return;
  const int64_t width = static_cast<int64_t>(bias.size());
  for (int64_t t = 0; t < n; ++t) {
    float* r = rows.row(t);
    for (int64_t i = 0; i < width; ++i) r[i] += bias[static_cast<size_t>(i)];
  }
}

}  // namespace

void LlamaModel::project_qkv(LlamaLayer& L, int64_t n, ThreadPool& pool) {
  project_qkv_weights(L, n, pool);
  add_bias(q_, n, L.bq);
  add_bias(k_, n, L.bk);
  add_bias(v_, n, L.bv);
}

void LlamaModel::project_output(LlamaLayer& L, int64_t n, ThreadPool& pool) {
  project_output_weights(L, n, pool);
  add_bias(proj_, n, L.bo);
}

void LlamaModel::project_qkv_weights(LlamaLayer& L, int64_t n, ThreadPool& pool) {
  AttentionSparsity* S = L.attn_sparsity.get();
  if (!S || S->in_threshold <= 0) {
    if (S && S->in_site) S->in_site->record(uint64_t(n * config_.dim), uint64_t(n * config_.dim));
    const MatmulJob jobs[] = {{&L.wq, xn_.ptr(), q_.ptr()}, {&L.wk, xn_.ptr(), k_.ptr()}, {&L.wv, xn_.ptr(), v_.ptr()}};
    matmul_many(jobs, 3, n, pool);
    return;
  }
  auto& p = S->packed;
  const KeepRule rule{.threshold = S->in_threshold};
  select_kept(xn_.ptr(), n, config_.dim, rule, p);
  if (S->in_site) S->in_site->record(p.kept, p.seen);
  const bool dense = batch_runs_dense(L.wq, p, config_.dim);
  if (!dense) pack_kept_values(xn_.ptr(), rule, p);
  if (S->q_only) {
    if (dense)
      matmul_masked({{&L.wq, q_.ptr()}}, xn_.ptr(), rule, n, config_.dim, pool);
    else
      matmul_sparse_input(S->wq_t, p.values.data(), n, p.active.data(), p.n_active(), q_.ptr(), pool);
    const MatmulJob jobs[] = {{&L.wk, xn_.ptr(), k_.ptr()}, {&L.wv, xn_.ptr(), v_.ptr()}};
    matmul_many(jobs, 2, n, pool);
    return;
  }
  if (dense) {
    matmul_masked({{&L.wq, q_.ptr()}, {&L.wk, k_.ptr()}, {&L.wv, v_.ptr()}}, xn_.ptr(), rule, n, config_.dim, pool);
    return;
  }
  // One product for q, k and v: y = [q | k | v] per token, then split.
  const int64_t dim = config_.dim, kv = config_.kv_dim;
  qkv_.resize(n, dim + 2 * kv);
  matmul_sparse_input(S->wqkv_t, p.values.data(), n, p.active.data(), p.n_active(), qkv_.ptr(), pool);
  split_columns(qkv_.ptr(), n, {{q_.ptr(), dim}, {k_.ptr(), kv}, {v_.ptr(), kv}});
}

void LlamaModel::project_output_weights(LlamaLayer& L, int64_t n, ThreadPool& pool) {
  AttentionSparsity* S = L.attn_sparsity.get();
  if (!S || S->out_threshold <= 0) {
    if (S && S->out_site) S->out_site->record(uint64_t(n * config_.dim), uint64_t(n * config_.dim));
    matmul(L.wo, att_.ptr(), n, proj_.ptr(), pool);
    return;
  }
  auto& p = S->packed;
  const KeepRule rule{.threshold = S->out_threshold};
  select_kept(att_.ptr(), n, config_.dim, rule, p);
  if (S->out_site) S->out_site->record(p.kept, p.seen);
  if (batch_runs_dense(L.wo, p, config_.dim)) {
    matmul_masked({{&L.wo, proj_.ptr()}}, att_.ptr(), rule, n, config_.dim, pool);
    return;
  }
  pack_kept_values(att_.ptr(), rule, p);
  matmul_sparse_input(S->wo_t, p.values.data(), n, p.active.data(), p.n_active(), proj_.ptr(), pool);
}

void LlamaModel::attention(LlamaLayer& L, int64_t layer, int64_t n, KvCache& cache, ThreadPool& pool) {
  const auto& c = config_;
  const int64_t past = cache.size();
  const int64_t group = c.n_heads / c.n_kv_heads;
  const float scale = 1.0f / std::sqrt(static_cast<float>(c.head_dim));
  if (static_cast<int>(score_rows_.size()) < pool.size()) score_rows_.resize(pool.size());
  for (auto& s : score_rows_) s.resize(static_cast<size_t>(past + n));
  att_.resize(n, c.dim);
  // One task per (token, head): causal attention over positions 0..pos.
  // Small problems (short contexts of small models) stay on this thread.
  auto run = [&](int64_t b, int64_t e, int thread) {
    float* scores = score_rows_[thread].data();
    for (int64_t task = b; task < e; ++task) {
      const int64_t t = task / c.n_heads, h = task % c.n_heads;
      const int64_t pos = past + t;
      const int64_t kv_off = (h / group) * c.head_dim;
      attend_head(q_.row(t) + h * c.head_dim, cache.key(layer, 0) + kv_off, cache.value(layer, 0) + kv_off,
                  cache.row_stride(), pos + 1, c.head_dim, scale, scores, att_.row(t) + h * c.head_dim);
    }
  };
  const int64_t macs = n * c.n_heads * (past + n) * c.head_dim * 2;
  if (macs < 64 * 1024 || pool.size() == 1) {
    run(0, n * c.n_heads, 0);
  } else {
    pool.parallel_for(n * c.n_heads, run);
  }
}

void LlamaModel::forward(const int32_t* tokens, int64_t n, KvCache& cache, Tensor& logits,
                         bool all_logits, ThreadPool& pool) {
  const auto& c = config_;
  if (n <= 0) return;
  if (needs_sparsity_plan_)
    throw Error("this model stores weights transposed for activation sparsity; its sparsity plan must be applied "
                "before running it (load it with load_model)");
  if (cache.size() + n > cache.capacity())
    throw Error(fmt::format("context overflow: {} tokens in the cache + {} new > capacity {}",
                            cache.size(), n, cache.capacity()));
  x_.resize(n, c.dim);
  for (int64_t t = 0; t < n; ++t) {
    if (tokens[t] < 0 || tokens[t] >= c.vocab_size)
      throw Error(fmt::format("token id {} is outside the vocabulary (size {})", tokens[t], c.vocab_size));
    read_row(token_embd_, tokens[t], x_.row(t));
  }
  const int64_t past = cache.size();
  // Section timing only when profiling (a clock read costs ~20 ns).
  using Clock = std::chrono::steady_clock;
  Clock::time_point mark = profile_ ? Clock::now() : Clock::time_point();
  auto lap = [&](double ForwardProfile::*field) {
    if (!profile_) return;
    const auto now = Clock::now();
    profile_->*field += std::chrono::duration<double>(now - mark).count();
    mark = now;
  };
  xn_.resize(n, c.dim);
  q_.resize(n, c.dim);
  k_.resize(n, c.kv_dim);
  v_.resize(n, c.kv_dim);
  proj_.resize(n, c.dim);
  rope_angles_.resize(n, c.rope_dim);
  for (int64_t t = 0; t < n; ++t) rope_angles(past + t, c.rope_dim, c.rope_base, rope_angles_.row(t));
  lap(&ForwardProfile::other_s);
  for (int64_t l = 0; l < c.n_layers; ++l) {
    LlamaLayer& L = layers_[l];
    const ActivationTap tap{observer_, l};
    scratch_.tap = tap;
    for (int64_t t = 0; t < n; ++t) rmsnorm(x_.row(t), L.attn_norm.data(), xn_.row(t), c.dim, c.rms_eps);
    tap(Site::AttnIn, xn_.ptr(), n, c.dim);
    project_qkv(L, n, pool);
    for (int64_t t = 0; t < n; ++t) {
      rope_rotate(q_.row(t), c.n_heads, c.head_dim, c.rope_dim, rope_angles_.row(t), c.rope_style);
      rope_rotate(k_.row(t), c.n_kv_heads, c.head_dim, c.rope_dim, rope_angles_.row(t), c.rope_style);
      std::memcpy(cache.key(l, past + t), k_.row(t), sizeof(float) * c.kv_dim);
      std::memcpy(cache.value(l, past + t), v_.row(t), sizeof(float) * c.kv_dim);
    }
    attention(L, l, n, cache, pool);
    tap(Site::AttnOut, att_.ptr(), n, c.dim);
    project_output(L, n, pool);
    for (int64_t i = 0; i < n * c.dim; ++i) x_.data[i] += proj_.data[i];
    lap(&ForwardProfile::attention_s);
    for (int64_t t = 0; t < n; ++t) rmsnorm(x_.row(t), L.ffn_norm.data(), xn_.row(t), c.dim, c.rms_eps);
    tap(Site::FfnIn, xn_.ptr(), n, c.dim);
    L.ffn->forward(xn_, ffn_out_, scratch_, pool);
    for (int64_t i = 0; i < n * c.dim; ++i) x_.data[i] += ffn_out_.data[i];
    lap(&ForwardProfile::ffn_s);
  }
  cache.advance(n);
  const int64_t first = all_logits ? 0 : n - 1;
  const int64_t rows = n - first;
  for (int64_t t = 0; t < rows; ++t)
    rmsnorm(x_.row(first + t), output_norm_.data(), xn_.row(t), c.dim, c.rms_eps);
  logits.resize(rows, c.vocab_size);
  matmul(output_, xn_.ptr(), rows, logits.ptr(), pool);
  lap(&ForwardProfile::other_s);
}

}  // namespace ffn
