#include "ffn/gate_sparse_ffn.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "ffn/sparse_batch.h"
#include "kernels/ops.h"
#include "kernels/packed_quant.h"
#include "kernels/sparse_matmul.h"

namespace ffn {

const char* GateRule::name(Kind k) {
  switch (k) {
    case Kind::Threshold: return "cats";
    case Kind::ChannelThreshold: return "chess";
    case Kind::StatisticalTopK: return "stat-topk";
    case Kind::ExactTopK: return "topk";
  }
  return "?";
}

GateSparseFfn::GateSparseFfn(WeightMatrix gate, WeightMatrix up, WeightMatrix down_t, GateRule rule,
                             SparsitySite* site, WeightMatrix down)
    // One token gathers up's rows in their file layout, from memory of
    // their own (with_own_rows: huge pages, not the file's 4 KiB ones).
    // Batches run up dense (forward), which wants the packed tiles; they are
    // kept where batches run dense at all, i.e. where the row-major down is
    // at hand (sparsity applied at run time, which holds W_down twice
    // already), and dropped elsewhere, where they would only hold memory.
    : gate_(std::move(gate)),
      up_(with_own_rows(down.data || down.packed ? std::move(up) : without_packed(std::move(up)))),
      down_t_(std::move(down_t)),
      down_(std::move(down)),
      rule_(std::move(rule)), site_(site) {
  if ((down_.data || down_.packed) && (down_.rows != gate_.cols || down_.cols != gate_.rows))
    throw std::invalid_argument("GateSparseFfn: inconsistent down shape");
  if (gate_.rows != up_.rows || gate_.cols != up_.cols || down_t_.rows != gate_.rows ||
      down_t_.cols != gate_.cols)
    throw std::invalid_argument("GateSparseFfn: inconsistent gate/up/down_t shapes");
  if (rule_.kind == GateRule::Kind::ChannelThreshold &&
      static_cast<int64_t>(rule_.channel_thresholds.size()) != hidden())
    throw std::invalid_argument("GateSparseFfn: one channel threshold per neuron expected");
}

void GateSparseFfn::select(const float* g, int64_t n, SparseActivations& out) const {
  decide(g, n);
  pack_activations(act_.data(), keep_.data(), n, hidden(), out);
}

void GateSparseFfn::decide(const float* g, int64_t n) const {
  const int64_t h = hidden();
  keep_.assign(static_cast<size_t>(n * h), 0);
  std::vector<float>& act = act_;
  act.resize(static_cast<size_t>(n * h));
  silu(g, act.data(), n * h);
  switch (rule_.kind) {
    case GateRule::Kind::Threshold:
      for (int64_t i = 0; i < n * h; ++i) keep_[i] = std::fabs(act[i]) > rule_.threshold;
      break;
    case GateRule::Kind::ChannelThreshold:
      for (int64_t t = 0; t < n; ++t)
        for (int64_t j = 0; j < h; ++j)
          keep_[t * h + j] = std::fabs(act[t * h + j]) > rule_.channel_thresholds[j];
      break;
    case GateRule::Kind::StatisticalTopK:
    case GateRule::Kind::ExactTopK: {
      // Both rank |SiLU(g)| per token (see the header for why not g).
      std::vector<float>& mag = mag_;
      mag.resize(static_cast<size_t>(h));
      const int64_t k = std::clamp<int64_t>(std::llround(rule_.keep_fraction * double(h)), 0, h);
      for (int64_t t = 0; t < n; ++t) {
        const float* a = act.data() + t * h;
        for (int64_t j = 0; j < h; ++j) mag[j] = std::fabs(a[j]);
        uint8_t* keep = keep_.data() + t * h;
        if (rule_.kind == GateRule::Kind::StatisticalTopK) {
          const float theta = statistical_topk_silu_threshold(g + t * h, h, rule_.keep_fraction);
          for (int64_t j = 0; j < h; ++j) keep[j] = mag[j] > theta;
          continue;
        }
        if (k == 0) continue;
        std::vector<float> sorted = mag;
        std::nth_element(sorted.begin(), sorted.begin() + (h - k), sorted.end());
        const float kth = sorted[h - k];
        // Ties at the k-th value: keep the first ones so exactly k survive.
        int64_t above = 0;
        for (int64_t j = 0; j < h; ++j) above += mag[j] > kth;
        int64_t ties = k - above;
        for (int64_t j = 0; j < h; ++j) keep[j] = mag[j] > kth || (mag[j] == kth && ties-- > 0);
      }
      break;
    }
  }
}

void GateSparseFfn::forward(const Tensor& x, Tensor& y, Scratch& s, ThreadPool& pool) const {
  const int64_t n = x.rows, h = hidden();
  s.a.resize(n, h);
  matmul(gate_, x.ptr(), n, s.a.ptr(), pool);
  s.tap(Site::FfnGate, s.a.ptr(), n, h);
  decide(s.a.ptr(), n);
  const KeepRule rule{.keep = keep_.data()};
  select_kept(act_.data(), n, h, rule, packed_);
  if (site_) site_->record(packed_.kept, packed_.seen);
  y.resize(n, d_model());
  if (batch_runs_dense(down_, packed_, h)) {
    // A wide batch: up for every neuron (packed tiles where they exist),
    // h = SiLU(g) * u for all, the masked down dense.
    s.b.resize(n, h);
    matmul(up_, x.ptr(), n, s.b.ptr(), pool);
    silu_mul(s.a.ptr(), s.b.ptr(), n * h);
    matmul_masked({{&down_, y.ptr()}}, s.a.ptr(), rule, n, h, pool);
    return;
  }
  // Up rows of the active neurons only, then h = SiLU(g) * u on the packed set.
  pack_kept_values(act_.data(), rule, packed_);
  const int64_t na = packed_.n_active();
  s.b.resize(n, std::max<int64_t>(na, 1));
  matmul_gather_rows(up_, x.ptr(), n, packed_.active.data(), na, s.b.ptr(), pool);
  for (int64_t i = 0; i < n * na; ++i) packed_.values[i] *= s.b.data[i];
  matmul_sparse_input(down_t_, packed_.values.data(), n, packed_.active.data(), na, y.ptr(), pool);
}

std::string GateSparseFfn::describe() const {
  return fmt::format("gated silu {}->{}->{} {}, {} sparse", d_model(), hidden(), d_model(),
                     dtype_name(gate_.type), GateRule::name(rule_.kind));
}

uint64_t GateSparseFfn::weight_bytes_per_token() const {
  return gate_.bytes() + up_.bytes() + down_t_.bytes();
}

}  // namespace ffn
