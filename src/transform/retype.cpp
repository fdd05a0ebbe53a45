#include "transform/retype.h"

#include <memory>
#include <vector>

#include "core/error.h"
#include "kernels/convert.h"

namespace ffn {

namespace {

// Mixture-of-experts routing tensors stay F32, as llama.cpp keeps them: they
// are tiny, and rounding a router logit can flip which expert a token gets.
bool is_routing_tensor(const std::string& name) {
  for (const char* part : {".ffn_gate_inp.", ".ffn_gate_inp_shexp.", ".ffn_gate_res.", ".ffn_const_"})
    if (name.find(part) != std::string::npos) return true;
  return false;
}

}  // namespace

ModelSource retype(const ModelSource& src, DType type) {
  ModelSource out = src.without_tensors();
  std::vector<float> row;
  for (const WeightTensor& t : src.tensors) {
    DType target = t.shape.size() >= 2 && !is_routing_tensor(t.name) ? type : DType::F32;
    if (!dtype_row_ok(target, t.cols())) target = DType::F16;
    if (t.type == target) {
      out.add(t);
      continue;
    }
    const uint64_t cols = t.cols(), rows = t.rows();
    auto buf = std::make_shared<std::vector<uint8_t>>(dtype_row_bytes(target, cols) * rows);
    row.resize(cols);
    const uint64_t in_bytes = dtype_row_bytes(t.type, cols), out_bytes = dtype_row_bytes(target, cols);
    for (uint64_t r = 0; r < rows; ++r) {
      dequantize_row(t.type, t.data + r * in_bytes, row.data(), cols);
      encode_row(target, row.data(), buf->data() + r * out_bytes, cols);
    }
    WeightTensor c = t;
    c.type = target;
    c.data = buf->data();
    c.bytes = buf->size();
    out.owners.push_back(buf);
    out.add(std::move(c));
  }
  return out;
}

}  // namespace ffn
