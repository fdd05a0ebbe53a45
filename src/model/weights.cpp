#include "model/weights.h"

#include <fmt/format.h>

#include <cstring>

#include "core/aligned_buffer.h"
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

namespace {

WeightMatrix load_view(const ModelSource& src, const std::string& name, const std::vector<uint64_t>& shape,
                       int64_t rows, int64_t cols) {
  const WeightTensor& t = src.get(name);
  check_shape(src, t, shape);
  WeightMatrix m;
  m.type = t.type;
  m.rows = rows;
  m.cols = cols;
  m.data = t.data;
  const size_t align = t.type == DType::F32 ? 4 : t.type == DType::F16 || t.type == DType::BF16 ? 2 : 1;
  if (reinterpret_cast<uintptr_t>(t.data) % align != 0) {
    auto buf = std::make_shared<AlignedVector<uint8_t>>(t.bytes);
    std::memcpy(buf->data(), t.data, t.bytes);
    m.data = buf->data();
    m.owned = std::move(buf);
  }
  return m;
}

}  // namespace

WeightMatrix load_matrix(const ModelSource& src, const std::string& name, int64_t rows, int64_t cols) {
  return load_view(src, name, {uint64_t(rows), uint64_t(cols)}, rows, cols);
}

WeightMatrix load_stacked_matrix(const ModelSource& src, const std::string& name, int64_t blocks, int64_t rows,
                                 int64_t cols) {
  return load_view(src, name, {uint64_t(blocks), uint64_t(rows), uint64_t(cols)}, blocks * rows, cols);
}

std::string transposed_tensor_name(const std::string& name) {
  const std::string suffix = ".weight";
  if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
    return name.substr(0, name.size() - suffix.size()) + "_t" + suffix;
  return name + "_t";
}

std::vector<float> load_vector(const ModelSource& src, const std::string& name, int64_t n) {
  return load_floats(src, name, {uint64_t(n)});
}

std::vector<float> load_floats(const ModelSource& src, const std::string& name, const std::vector<uint64_t>& shape) {
  const WeightTensor& t = src.get(name);
  check_shape(src, t, shape);
  std::vector<float> v(static_cast<size_t>(t.elements()));
  dequantize_row(t.type, t.data, v.data(), t.elements());
  return v;
}

}  // namespace ffn
