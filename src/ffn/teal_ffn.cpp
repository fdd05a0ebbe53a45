#include "ffn/teal_ffn.h"

#include <fmt/format.h>

#include <algorithm>
#include <stdexcept>

#include "kernels/ops.h"
#include "kernels/sparse_matmul.h"

namespace ffn {

TealFfn::TealFfn(Input in, WeightMatrix down, TealThresholds t, SparsitySite* in_site, SparsitySite* mid_site)
    : t_(t), in_(std::move(in)), down_(std::move(down)), in_site_(in_site), mid_site_(mid_site) {
  const bool in_t = t_.ffn_in > 0, mid_t = t_.ffn_mid > 0;
  if (in_t) {
    if (in_.gate_up_t.cols % 2 != 0) throw std::invalid_argument("TealFfn: gate/up W^T has an odd width");
    hidden_ = in_.gate_up_t.cols / 2;
    d_model_ = in_.gate_up_t.rows;
  } else {
    if (in_.gate.rows != in_.up.rows || in_.gate.cols != in_.up.cols)
      throw std::invalid_argument("TealFfn: gate and up differ in shape");
    hidden_ = in_.gate.rows;
    d_model_ = in_.gate.cols;
  }
  const int64_t down_in = mid_t ? down_.rows : down_.cols, down_out = mid_t ? down_.cols : down_.rows;
  if (down_in != hidden_ || down_out != d_model_) throw std::invalid_argument("TealFfn: inconsistent gate/up/down shapes");
}

void TealFfn::forward(const Tensor& x, Tensor& y, Scratch& s, ThreadPool& pool) const {
  const int64_t n = x.rows;
  s.a.resize(n, hidden_);
  s.b.resize(n, hidden_);
  if (t_.ffn_in > 0) {
    threshold_activations(x.ptr(), n, d_model_, t_.ffn_in, nullptr, packed_);
    if (in_site_) in_site_->record(packed_.kept, packed_.seen);
    // One product for both: y = [gate | up] per token, then split.
    gate_up_.resize(n, 2 * hidden_);
    matmul_sparse_input(in_.gate_up_t, packed_.values.data(), n, packed_.active.data(), packed_.n_active(),
                        gate_up_.ptr(), pool);
    for (int64_t t = 0; t < n; ++t) {
      const float* row = gate_up_.ptr() + t * 2 * hidden_;
      std::copy(row, row + hidden_, s.a.ptr() + t * hidden_);
      std::copy(row + hidden_, row + 2 * hidden_, s.b.ptr() + t * hidden_);
    }
  } else {
    if (in_site_) in_site_->record(uint64_t(n * d_model_), uint64_t(n * d_model_));
    const MatmulJob jobs[] = {{&in_.gate, x.ptr(), s.a.ptr()}, {&in_.up, x.ptr(), s.b.ptr()}};
    matmul_many(jobs, 2, n, pool);
  }
  s.tap(Site::FfnGate, s.a.ptr(), n, hidden_);
  s.tap(Site::FfnUp, s.b.ptr(), n, hidden_);
  silu_mul(s.a.ptr(), s.b.ptr(), n * hidden_);
  s.tap(Site::FfnMid, s.a.ptr(), n, hidden_);
  y.resize(n, d_model_);
  if (t_.ffn_mid > 0) {
    threshold_activations(s.a.ptr(), n, hidden_, t_.ffn_mid, nullptr, packed_);
    if (mid_site_) mid_site_->record(packed_.kept, packed_.seen);
    matmul_sparse_input(down_, packed_.values.data(), n, packed_.active.data(), packed_.n_active(),
                        y.ptr(), pool);
  } else {
    if (mid_site_) mid_site_->record(uint64_t(n * hidden_), uint64_t(n * hidden_));
    matmul(down_, s.a.ptr(), n, y.ptr(), pool);
  }
}

std::string TealFfn::describe() const {
  return fmt::format("gated silu {}->{}->{} {}, teal sparse (t_in {:.4g}, t_mid {:.4g})", d_model_, hidden_,
                     d_model_, dtype_name(down_.type), t_.ffn_in, t_.ffn_mid);
}

uint64_t TealFfn::weight_bytes_per_token() const {
  return (t_.ffn_in > 0 ? in_.gate_up_t.bytes() : in_.gate.bytes() + in_.up.bytes()) + down_.bytes();
}

}  // namespace ffn
