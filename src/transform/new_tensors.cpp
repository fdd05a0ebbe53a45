#include "transform/new_tensors.h"

#include "kernels/convert.h"

namespace ffn {

std::vector<float> decode_matrix(const WeightMatrix& w) {
  std::vector<float> f(static_cast<size_t>(w.rows * w.cols));
  for (int64_t r = 0; r < w.rows; ++r) read_row(w, r, f.data() + r * w.cols);
  return f;
}

std::shared_ptr<std::vector<uint8_t>> encode_matrix(const std::vector<float>& f, int64_t rows, int64_t cols,
                                                    DType type) {
  const uint64_t rb = dtype_row_bytes(type, uint64_t(cols));
  auto out = std::make_shared<std::vector<uint8_t>>(rb * uint64_t(rows));
  for (int64_t r = 0; r < rows; ++r)
    encode_row(type, f.data() + r * cols, out->data() + uint64_t(r) * rb, uint64_t(cols));
  return out;
}

void add_owned_tensor(ModelSource& out, std::string name, DType type, std::vector<uint64_t> shape,
                      std::shared_ptr<std::vector<uint8_t>> bytes) {
  out.add(WeightTensor{std::move(name), type, std::move(shape), bytes->data(), bytes->size()});
  out.owners.push_back(std::move(bytes));
}

}  // namespace ffn
