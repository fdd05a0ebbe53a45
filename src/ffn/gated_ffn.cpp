#include "ffn/gated_ffn.h"

#include <fmt/format.h>

#include <stdexcept>

#include "kernels/ops.h"

namespace ffn {

GatedFfn::GatedFfn(WeightMatrix gate, WeightMatrix up, WeightMatrix down)
    : gate_(std::move(gate)), up_(std::move(up)), down_(std::move(down)) {
  if (gate_.rows != up_.rows || gate_.cols != up_.cols || down_.cols != gate_.rows ||
      down_.rows != gate_.cols)
    throw std::invalid_argument("GatedFfn: inconsistent gate/up/down shapes");
}

void GatedFfn::forward(const Tensor& x, Tensor& y, Scratch& s, ThreadPool& pool) const {
  const int64_t n = x.rows;
  s.a.resize(n, hidden());
  s.b.resize(n, hidden());
  const MatmulJob jobs[] = {{&gate_, x.ptr(), s.a.ptr()}, {&up_, x.ptr(), s.b.ptr()}};
  matmul_many(jobs, 2, n, pool);
  s.tap(Site::FfnGate, s.a.ptr(), n, hidden());
  s.tap(Site::FfnUp, s.b.ptr(), n, hidden());
  silu_mul(s.a.ptr(), s.b.ptr(), n * hidden());
  s.tap(Site::FfnMid, s.a.ptr(), n, hidden());
  y.resize(n, d_model());
  matmul(down_, s.a.ptr(), n, y.ptr(), pool);
}

std::string GatedFfn::describe() const {
  return fmt::format("gated silu {}->{}->{} {}", d_model(), hidden(), d_model(), dtype_name(gate_.type));
}

uint64_t GatedFfn::weight_bytes_per_token() const {
  return gate_.bytes() + up_.bytes() + down_.bytes();
}

}  // namespace ffn
