#include "ffn/gate_sparse_ffn.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "ffn/sparse_batch.h"
#include "kernels/gather_rows_q8.h"
#include "kernels/neuron_rows.h"
#include "kernels/ops.h"
#include "kernels/packed_quant.h"
#include "kernels/sparse_input_q8.h"
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

namespace {

// up's rows as the gathers read them: Q8_0/Q4_0 re-laid for the VNNI
// gather (kernels/gather_rows_q8.h: 20-25% faster than the file layout on
// scattered rows), else copied into memory of their own (with_own_rows:
// huge pages, not the file's 4 KiB ones). Either way the file's pages are
// released.
WeightMatrix rows_for_gathers(const WeightMatrix& up, ThreadPool* pool) {
  WeightMatrix rows = without_packed(up);
  if (can_pack_sparse_input(rows)) return packed_for_sparse_input(std::move(rows), pool);
  return with_own_rows(std::move(rows));
}

WeightMatrix shape_of(const WeightMatrix& w) { return WeightMatrix{.type = w.type, .rows = w.rows, .cols = w.cols}; }

}  // namespace

GateSparseFfn::GateSparseFfn(WeightMatrix gate, WeightMatrix up, WeightMatrix down_t, GateRule rule,
                             SparsitySite* site, WeightMatrix down, ThreadPool* pool)
    // Batches run up dense (forward), which wants the packed tiles; they
    // run dense only where the row-major down is at hand (sparsity applied
    // at run time, which holds W_down twice already). Elsewhere up_ keeps
    // only its shape: the tiles would only hold memory.
    : gate_(std::move(gate)),
      up_rows_(rows_for_gathers(up, pool)),
      up_(down.data || down.packed ? std::move(up) : shape_of(up)),
      down_t_(std::move(down_t)),
      down_(std::move(down)),
      rule_(std::move(rule)), site_(site) {
  if ((down_.data || down_.packed) && (down_.rows != gate_.cols || down_.cols != gate_.rows))
    throw std::invalid_argument("GateSparseFfn: inconsistent down shape");
  if (gate_.rows != up_.rows || gate_.cols != up_.cols || down_t_.rows != gate_.rows ||
      down_t_.cols != gate_.cols)
    throw std::invalid_argument("GateSparseFfn: inconsistent gate/up/down_t shapes");
  // up's and down's rows of each neuron side by side where both have one
  // type and row layout: one token's kept neurons are then one pass of
  // 2-row reads (kernels/neuron_rows.h); batches read the same rows as views.
  if (can_pair_neuron_rows(up_rows_, down_t_)) {
    NeuronRows pairs = paired_neuron_rows(up_rows_, down_t_, pool);
    up_rows_ = std::move(pairs.up);
    down_t_ = std::move(pairs.down_t);
  }
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
  if (n == 1 && neuron_rows_are_paired(up_rows_, down_t_)) {
    gated_neuron_rows(up_rows_, down_t_, x.ptr(), packed_.values.data(), packed_.active.data(), na, y.ptr(), pool);
    return;
  }
  s.b.resize(n, std::max<int64_t>(na, 1));
  if (up_rows_.packed) gather_rows_q8(up_rows_, x.ptr(), n, packed_.active.data(), na, s.b.ptr(), pool);
  else matmul_gather_rows(up_rows_, x.ptr(), n, packed_.active.data(), na, s.b.ptr(), pool);
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
