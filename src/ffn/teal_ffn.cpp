#include "ffn/teal_ffn.h"

#include <fmt/format.h>

#include <stdexcept>

#include "ffn/sparse_batch.h"
#include "kernels/ops.h"
#include "kernels/sparse_matmul.h"

namespace ffn {

TealFfn::TealFfn(Weights w, TealThresholds t, SparsitySite* in_site, SparsitySite* mid_site)
    : t_(t), w_(std::move(w)), in_site_(in_site), mid_site_(mid_site) {
  hidden_ = w_.gate.rows;
  d_model_ = w_.gate.cols;
  bool ok = w_.up.rows == hidden_ && w_.up.cols == d_model_ && w_.down.rows == d_model_ && w_.down.cols == hidden_;
  if (t_.ffn_in > 0) ok = ok && w_.gate_up_t.rows == d_model_ && w_.gate_up_t.cols == 2 * hidden_;
  if (t_.ffn_mid > 0) ok = ok && w_.down_t.rows == hidden_ && w_.down_t.cols == d_model_;
  if (!ok) throw std::invalid_argument("TealFfn: inconsistent gate/up/down shapes");
}

void TealFfn::forward(const Tensor& x, Tensor& y, Scratch& s, ThreadPool& pool) const {
  const int64_t n = x.rows;
  s.a.resize(n, hidden_);
  s.b.resize(n, hidden_);
  bool swiglu_joined = false;  // s.a already holds silu(gate) * up
  if (t_.ffn_in > 0) {
    const KeepRule rule{.threshold = t_.ffn_in};
    select_kept(x.ptr(), n, d_model_, rule, packed_);
    if (in_site_) in_site_->record(packed_.kept, packed_.seen);
    if (batch_runs_dense(w_.gate, packed_, d_model_)) {
      matmul_masked({{&w_.gate, s.a.ptr()}, {&w_.up, s.b.ptr()}}, x.ptr(), rule, n, d_model_, pool);
    } else {
      // One product for both: y = [gate | up] per token, then split.
      pack_kept_values(x.ptr(), rule, packed_);
      gate_up_.resize(n, 2 * hidden_);
      matmul_sparse_input(w_.gate_up_t, packed_.values.data(), n, packed_.active.data(), packed_.n_active(),
                          gate_up_.ptr(), pool);
      swiglu_joined = !s.tap.observer;
      if (swiglu_joined) {
        // SwiGLU straight from each [gate | up] row: no copy into separate
        // gate and up rows (~2 us of each decoded layer, on the thread the
        // others wait for). Split only for an observer of gate and up.
        for (int64_t t = 0; t < n; ++t)
          silu_mul_into(gate_up_.row(t), gate_up_.row(t) + hidden_, s.a.row(t), hidden_);
      } else {
        split_columns(gate_up_.ptr(), n, {{s.a.ptr(), hidden_}, {s.b.ptr(), hidden_}});
      }
    }
  } else {
    if (in_site_) in_site_->record(uint64_t(n * d_model_), uint64_t(n * d_model_));
    const MatmulJob jobs[] = {{&w_.gate, x.ptr(), s.a.ptr()}, {&w_.up, x.ptr(), s.b.ptr()}};
    matmul_many(jobs, 2, n, pool);
  }
  if (!swiglu_joined) {
    s.tap(Site::FfnGate, s.a.ptr(), n, hidden_);
    s.tap(Site::FfnUp, s.b.ptr(), n, hidden_);
    silu_mul(s.a.ptr(), s.b.ptr(), n * hidden_);
  }
  s.tap(Site::FfnMid, s.a.ptr(), n, hidden_);
  y.resize(n, d_model_);
  if (t_.ffn_mid > 0) {
    const KeepRule rule{.threshold = t_.ffn_mid};
    select_kept(s.a.ptr(), n, hidden_, rule, packed_);
    if (mid_site_) mid_site_->record(packed_.kept, packed_.seen);
    if (batch_runs_dense(w_.down, packed_, hidden_)) {
      matmul_masked({{&w_.down, y.ptr()}}, s.a.ptr(), rule, n, hidden_, pool);
    } else {
      pack_kept_values(s.a.ptr(), rule, packed_);
      matmul_sparse_input(w_.down_t, packed_.values.data(), n, packed_.active.data(), packed_.n_active(), y.ptr(),
                          pool);
    }
  } else {
    if (mid_site_) mid_site_->record(uint64_t(n * hidden_), uint64_t(n * hidden_));
    matmul(w_.down, s.a.ptr(), n, y.ptr(), pool);
  }
}

std::string TealFfn::describe() const {
  return fmt::format("gated silu {}->{}->{} {}, teal sparse (t_in {:.4g}, t_mid {:.4g})", d_model_, hidden_,
                     d_model_, dtype_name(w_.down.type), t_.ffn_in, t_.ffn_mid);
}

uint64_t TealFfn::weight_bytes_per_token() const {
  return w_.gate.bytes() + w_.up.bytes() + w_.down.bytes();
}

}  // namespace ffn
