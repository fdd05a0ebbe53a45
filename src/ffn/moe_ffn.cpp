#include "ffn/moe_ffn.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include "kernels/matmul.h"
#include "kernels/ops.h"
#include "kernels/packed_quant.h"

namespace ffn {

WeightMatrix row_block(const WeightMatrix& m, int64_t index, int64_t rows_per_block) {
  WeightMatrix v = m;
  v.rows = rows_per_block;
  v.data = m.data + uint64_t(index) * uint64_t(rows_per_block) * m.row_bytes();
  // The packed copy serves the block when the block is whole row tiles.
  if (m.packed && rows_per_block % kPackRows == 0)
    v.packed = m.packed + uint64_t(index * rows_per_block / kPackRows) * packed_tile_bytes(m.type, m.cols);
  else
    v = without_packed(v);
  return v;
}

MoeFfn::MoeFfn(MoeWeights w, MoeRouting routing, MoeMeter* meter)
    : w_(std::move(w)), routing_(routing), meter_(meter) {
  d_ = w_.router.cols;
  const int64_t E = w_.n_experts, h = w_.expert_hidden, N = w_.n_routed();
  auto require = [](bool ok, const char* what) {
    if (!ok) throw std::invalid_argument(std::string("MoeFfn: ") + what);
  };
  require(E >= 0 && h >= 0 && w_.n_zero >= 0 && w_.n_copy >= 0 && w_.n_const >= 0, "negative count");
  require(N >= 1 && w_.router.rows == N, "router rows != number of routed experts");
  if (E > 0) {
    require(w_.gate_exps.rows == E * h && w_.gate_exps.cols == d_, "gate_exps shape");
    require(w_.up_exps.rows == E * h && w_.up_exps.cols == d_, "up_exps shape");
    require(w_.down_exps.rows == E * d_ && w_.down_exps.cols == h, "down_exps shape");
  }
  require(w_.router_bias.empty() || int64_t(w_.router_bias.size()) == N, "router bias length");
  require(int64_t(w_.const_vectors.size()) == w_.n_const * d_, "constant expert vectors");
  require(int64_t(w_.const_gates.size()) == w_.n_const * 2 * d_, "constant expert gates");
  if (w_.gating_residual.data)
    require(w_.gating_residual.rows == N && w_.gating_residual.cols == N, "gating residual shape");
  if (w_.shared) require(w_.shared->d_model() == d_, "shared expert width");
  require(w_.shared_gate.empty() || (w_.shared && int64_t(w_.shared_gate.size()) == d_), "shared expert gate");
  set_top_k(routing_.top_k);
  if (routing_.order == MoeOrder::TopKThenSoftmax && routing_.gating != MoeGating::Softmax)
    throw std::invalid_argument("MoeFfn: top-k-then-softmax needs softmax gating");
  experts_.reserve(size_t(E));
  for (int64_t e = 0; e < E; ++e)
    experts_.emplace_back(row_block(w_.gate_exps, e, h), row_block(w_.up_exps, e, h),
                          row_block(w_.down_exps, e, d_));
  if (meter_) meter_->ffn_expert_bytes = double(expert_bytes());
}

void MoeFfn::set_top_k(int64_t k) {
  if (k < 1 || k > w_.n_routed())
    throw std::invalid_argument(fmt::format("MoeFfn: top_k {} outside 1..{}", k, w_.n_routed()));
  routing_.top_k = k;
}

uint64_t MoeFfn::expert_bytes() const {
  if (w_.n_experts == 0) return 0;
  return (w_.gate_exps.bytes() + w_.up_exps.bytes() + w_.down_exps.bytes()) / uint64_t(w_.n_experts);
}

uint64_t MoeFfn::weight_bytes_per_token() const {
  const int64_t ffn_slots = std::min(routing_.top_k, w_.n_experts);
  uint64_t b = w_.router.bytes() + uint64_t(ffn_slots) * expert_bytes();
  if (w_.gating_residual.data) b += w_.gating_residual.bytes();
  if (w_.shared) b += w_.shared->weight_bytes_per_token();
  return b;
}

std::string MoeFfn::describe() const {
  std::string s = fmt::format("moe {} experts x gated silu {}->{}->{} {}, top-{} {}{}", w_.n_experts, d_,
                              w_.expert_hidden, d_, dtype_name(w_.gate_exps.type), routing_.top_k,
                              moe_gating_name(routing_.gating),
                              routing_.renormalize ? " renormalized" : "");
  if (w_.shared) s += fmt::format(", shared {}", w_.shared->describe());
  if (w_.n_zero + w_.n_copy + w_.n_const)
    s += fmt::format(", MoE++ {} zero/{} copy/{} constant", w_.n_zero, w_.n_copy, w_.n_const);
  if (w_.gating_residual.data) s += ", gating residual";
  return s;
}

void MoeFfn::compute_logits(const Tensor& x, MoeScratch& s, ThreadPool& pool) const {
  const int64_t n = x.rows, N = w_.n_routed();
  s.logits.resize(n, N);
  matmul(w_.router, x.ptr(), n, s.logits.ptr(), pool);
  if (!w_.router_bias.empty())
    for (int64_t t = 0; t < n; ++t)
      for (int64_t e = 0; e < N; ++e) s.logits.row(t)[e] += w_.router_bias[size_t(e)];
  if (w_.gating_residual.data) {
    // The previous layer left its logits for these same tokens (the model
    // checks at load that it is a MoE layer with as many routed experts).
    if (s.prev_logits.rows != n || s.prev_logits.cols != N)
      throw std::logic_error("MoeFfn: gating residual without the previous layer's router logits");
    s.residual.resize(n, N);
    matmul(w_.gating_residual, s.prev_logits.ptr(), n, s.residual.ptr(), pool);
    for (int64_t i = 0; i < n * N; ++i) s.logits.data[i] += s.residual.data[i];
  }
  s.prev_logits.resize(n, N);
  std::memcpy(s.prev_logits.ptr(), s.logits.ptr(), sizeof(float) * size_t(n * N));
}

void MoeFfn::add_zero_computation(const Tensor& x, int64_t t, int64_t id, float weight, float* y) const {
  const int64_t first_copy = w_.n_experts + w_.n_zero, first_const = first_copy + w_.n_copy;
  const float* xt = x.row(t);
  if (id < first_copy) return;  // zero expert
  if (id < first_const) {       // copy expert
    axpy_f32(weight, xt, y, d_);
    return;
  }
  const int64_t c = id - first_const;  // constant expert
  const float* gates = w_.const_gates.data() + c * 2 * d_;
  const float g0 = dot_f32(gates, xt, d_), g1 = dot_f32(gates + d_, xt, d_);
  const float m = std::max(g0, g1), e0 = std::exp(g0 - m), e1 = std::exp(g1 - m);
  const float a0 = e0 / (e0 + e1), a1 = e1 / (e0 + e1);
  axpy_f32(weight * a0, xt, y, d_);
  axpy_f32(weight * a1, w_.const_vectors.data() + c * d_, y, d_);
}

void MoeFfn::forward_one_token(const Tensor& x, Tensor& y, Scratch& scratch, ThreadPool& pool) const {
  MoeScratch& s = scratch.moe;
  const int64_t E = w_.n_experts, k = routing_.top_k;
  // FFN experts picked, then the shared expert: product j reads hidden
  // values at offset[j] of scratch a/b and writes output row j of s.out.
  std::vector<const GatedFfn*>& ffns = s.picked;
  std::vector<float>& weights = s.token_weights;
  ffns.clear();
  weights.clear();
  for (int64_t j = 0; j < k; ++j)
    if (s.ids[size_t(j)] < E) {
      ffns.push_back(&experts_[size_t(s.ids[size_t(j)])]);
      weights.push_back(s.weights[size_t(j)]);
    }
  if (w_.shared) {
    ffns.push_back(&*w_.shared);
    float g = 1.0f;
    if (!w_.shared_gate.empty()) g = 1.0f / (1.0f + std::exp(-dot_f32(w_.shared_gate.data(), x.ptr(), d_)));
    weights.push_back(g);
  }
  const int64_t m = int64_t(ffns.size());
  std::vector<int64_t>& offset = s.picked_offsets;
  offset.assign(size_t(m + 1), 0);
  for (int64_t j = 0; j < m; ++j) offset[size_t(j + 1)] = offset[size_t(j)] + ffns[size_t(j)]->hidden();
  scratch.a.resize(1, offset[size_t(m)]);
  scratch.b.resize(1, offset[size_t(m)]);
  s.out.resize(std::max<int64_t>(m, 1), d_);
  std::vector<MatmulJob>& jobs = s.jobs;
  jobs.clear();
  for (int64_t j = 0; j < m; ++j) {
    jobs.push_back({&ffns[size_t(j)]->gate(), x.ptr(), scratch.a.ptr() + offset[size_t(j)]});
    jobs.push_back({&ffns[size_t(j)]->up(), x.ptr(), scratch.b.ptr() + offset[size_t(j)]});
  }
  matmul_many(jobs.data(), int64_t(jobs.size()), 1, pool);
  silu_mul(scratch.a.ptr(), scratch.b.ptr(), offset[size_t(m)]);
  jobs.clear();
  for (int64_t j = 0; j < m; ++j)
    jobs.push_back({&ffns[size_t(j)]->down(), scratch.a.ptr() + offset[size_t(j)], s.out.row(j)});
  matmul_many(jobs.data(), int64_t(jobs.size()), 1, pool);
  y.resize(1, d_);
  std::fill(y.data.begin(), y.data.end(), 0.0f);
  for (int64_t j = 0; j < m; ++j) axpy_f32(weights[size_t(j)], s.out.row(j), y.ptr(), d_);
  uint64_t zero = 0, copy = 0, constant = 0;
  for (int64_t j = 0; j < k; ++j) {
    const int32_t id = s.ids[size_t(j)];
    if (id < E) continue;
    add_zero_computation(x, 0, id, s.weights[size_t(j)], y.ptr());
    if (id < E + w_.n_zero) ++zero;
    else if (id < E + w_.n_zero + w_.n_copy) ++copy;
    else ++constant;
  }
  if (meter_) {
    meter_->tokens += 1;
    meter_->ffn_slots += uint64_t(m - (w_.shared ? 1 : 0));
    meter_->zero_slots += zero;
    meter_->copy_slots += copy;
    meter_->const_slots += constant;
  }
}

void MoeFfn::forward(const Tensor& x, Tensor& y, Scratch& scratch, ThreadPool& pool) const {
  MoeScratch& s = scratch.moe;
  const int64_t n = x.rows, E = w_.n_experts, k = routing_.top_k;
  compute_logits(x, s, pool);
  s.ids.resize(size_t(n * k));
  s.weights.resize(size_t(n * k));
  route_tokens(s.logits.ptr(), n, w_.n_routed(), routing_, s.ids.data(), s.weights.data());
  if (n == 1) {
    forward_one_token(x, y, scratch, pool);
    return;
  }

  // Group the FFN-expert slots by expert (a counting sort): expert e's
  // tokens are tokens[offsets[e] .. offsets[e + 1]).
  s.offsets.assign(size_t(E + 1), 0);
  for (int32_t id : s.ids)
    if (id < E) ++s.offsets[size_t(id) + 1];
  for (int64_t e = 0; e < E; ++e) s.offsets[size_t(e + 1)] += s.offsets[size_t(e)];
  const int64_t n_ffn_slots = E ? s.offsets[size_t(E)] : 0;
  s.tokens.resize(size_t(n_ffn_slots));
  s.token_weights.resize(size_t(n_ffn_slots));
  {
    std::vector<int32_t>& cursor = s.offsets;  // advanced, then restored below
    for (int64_t t = 0; t < n; ++t)
      for (int64_t j = 0; j < k; ++j) {
        const int32_t id = s.ids[size_t(t * k + j)];
        if (id >= E) continue;
        const int32_t at = cursor[size_t(id)]++;
        s.tokens[size_t(at)] = int32_t(t);
        s.token_weights[size_t(at)] = s.weights[size_t(t * k + j)];
      }
    for (int64_t e = E; e > 0; --e) cursor[size_t(e)] = cursor[size_t(e - 1)];
    if (E) cursor[0] = 0;
  }

  y.resize(n, d_);
  std::fill(y.data.begin(), y.data.end(), 0.0f);
  // Experts see subsets of the tokens: the layer's activation tap would
  // misreport them, so it is off inside.
  const ActivationTap tap = scratch.tap;
  scratch.tap = {};
  for (int64_t e = 0; e < E; ++e) {
    const int32_t b = s.offsets[size_t(e)], m = s.offsets[size_t(e + 1)] - b;
    if (m == 0) continue;
    s.x.resize(m, d_);
    for (int32_t i = 0; i < m; ++i)
      std::memcpy(s.x.row(i), x.row(s.tokens[size_t(b + i)]), sizeof(float) * size_t(d_));
    experts_[size_t(e)].forward(s.x, s.out, scratch, pool);
    for (int32_t i = 0; i < m; ++i)
      axpy_f32(s.token_weights[size_t(b + i)], s.out.row(i), y.row(s.tokens[size_t(b + i)]), d_);
  }
  uint64_t zero = 0, copy = 0, constant = 0;
  for (int64_t t = 0; t < n; ++t)
    for (int64_t j = 0; j < k; ++j) {
      const int32_t id = s.ids[size_t(t * k + j)];
      if (id < E) continue;
      add_zero_computation(x, t, id, s.weights[size_t(t * k + j)], y.row(t));
      if (id < E + w_.n_zero) ++zero;
      else if (id < E + w_.n_zero + w_.n_copy) ++copy;
      else ++constant;
    }
  if (w_.shared) {
    w_.shared->forward(x, s.out, scratch, pool);
    for (int64_t t = 0; t < n; ++t) {
      float g = 1.0f;
      if (!w_.shared_gate.empty()) g = 1.0f / (1.0f + std::exp(-dot_f32(w_.shared_gate.data(), x.row(t), d_)));
      axpy_f32(g, s.out.row(t), y.row(t), d_);
    }
  }
  scratch.tap = tap;
  if (meter_) {
    meter_->tokens += uint64_t(n);
    meter_->ffn_slots += uint64_t(n_ffn_slots);
    meter_->zero_slots += zero;
    meter_->copy_slots += copy;
    meter_->const_slots += constant;
  }
}

}  // namespace ffn
