#include "model/weights.h"

#include <fmt/format.h>

#include "core/error.h"
#include "kernels/convert.h"

namespace ffn {

namespace {

void check_shape(const ModelSource& src, const WeightTensor& t, const std::vector<uint64_t>& want) {
  if (t.shape != want) {
    WeightTensor expected;
    expected.shape = want;
    fail(src.path, "tensor '" + t.name + "' shape", expected.shape_string(), t.shape_string());
  }
}

}  // namespace

WeightMatrix load_matrix(const ModelSource& src, const std::string& name, int64_t rows, int64_t cols) {
  const WeightTensor& t = src.get(name);
  check_shape(src, t, {uint64_t(rows), uint64_t(cols)});
  WeightMatrix m;
  m.type = DType::F32;
  m.rows = rows;
  m.cols = cols;
  if (t.type == DType::F32 && reinterpret_cast<uintptr_t>(t.data) % alignof(float) == 0) {
    m.data = reinterpret_cast<const float*>(t.data);
    return m;
  }
  auto buf = std::make_shared<AlignedVector<float>>(static_cast<size_t>(rows * cols));
  const uint64_t row_bytes = dtype_row_bytes(t.type, uint64_t(cols));
  for (int64_t r = 0; r < rows; ++r)
    dequantize_row(t.type, t.data + r * row_bytes, buf->data() + r * cols, uint64_t(cols));
  m.data = buf->data();
  m.owned = std::move(buf);
  return m;
}

std::vector<float> load_vector(const ModelSource& src, const std::string& name, int64_t n) {
  const WeightTensor& t = src.get(name);
  check_shape(src, t, {uint64_t(n)});
  std::vector<float> v(static_cast<size_t>(n));
  dequantize_row(t.type, t.data, v.data(), uint64_t(n));
  return v;
}

}  // namespace ffn
