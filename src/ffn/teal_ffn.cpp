#include "ffn/teal_ffn.h"

#include <fmt/format.h>

#include <stdexcept>

#include "kernels/ops.h"
#include "kernels/sparse_matmul.h"

namespace ffn {

TealFfn::TealFfn(WeightMatrix gate, WeightMatrix up, WeightMatrix down, TealThresholds t, SparsitySite* in_site,
                 SparsitySite* mid_site)
    : t_(t), gate_(std::move(gate)), up_(std::move(up)), down_(std::move(down)), in_site_(in_site),
      mid_site_(mid_site) {
  const bool in_t = t_.ffn_in > 0, mid_t = t_.ffn_mid > 0;
  hidden_ = in_t ? gate_.cols : gate_.rows;
  d_model_ = in_t ? gate_.rows : gate_.cols;
  const int64_t down_in = mid_t ? down_.rows : down_.cols, down_out = mid_t ? down_.cols : down_.rows;
  if (gate_.rows != up_.rows || gate_.cols != up_.cols || down_in != hidden_ || down_out != d_model_)
    throw std::invalid_argument("TealFfn: inconsistent gate/up/down shapes");
}

void TealFfn::forward(const Tensor& x, Tensor& y, Scratch& s, ThreadPool& pool) const {
  const int64_t n = x.rows;
  s.a.resize(n, hidden_);
  s.b.resize(n, hidden_);
  if (t_.ffn_in > 0) {
    threshold_activations(x.ptr(), n, d_model_, t_.ffn_in, nullptr, packed_);
    if (in_site_) in_site_->record(packed_.kept, packed_.seen);
    matmul_sparse_input(gate_, packed_.values.data(), n, packed_.active.data(), packed_.n_active(),
                        s.a.ptr(), pool);
    matmul_sparse_input(up_, packed_.values.data(), n, packed_.active.data(), packed_.n_active(),
                        s.b.ptr(), pool);
  } else {
    if (in_site_) in_site_->record(uint64_t(n * d_model_), uint64_t(n * d_model_));
    matmul(gate_, x.ptr(), n, s.a.ptr(), pool);
    matmul(up_, x.ptr(), n, s.b.ptr(), pool);
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
                     d_model_, dtype_name(gate_.type), t_.ffn_in, t_.ffn_mid);
}

uint64_t TealFfn::weight_bytes_per_token() const { return gate_.bytes() + up_.bytes() + down_.bytes(); }

}  // namespace ffn
