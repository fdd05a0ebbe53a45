// GGUF v3 writer. Writes to a temporary file in the destination's directory
// and renames it at the end, so a failure never leaves a partial output.
#pragma once

#include <cstdio>
#include <functional>
#include <string>
#include <vector>

#include "io/gguf_value.h"
#include "io/weight_tensor.h"

namespace ffn {

class GgufWriter {
 public:
  static constexpr uint32_t kAlignment = 32;

  // Adds or replaces a metadata key (order of first insertion is kept).
  void set(const std::string& key, GgufValue value);
  // The tensor's data pointer must stay valid until write() returns.
  void add_tensor(const WeightTensor& tensor);

  void write(const std::string& path) const;

 private:
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::vector<WeightTensor> tensors_;
};

// Writes `bytes` produced by `fill(FILE*)` to `path` atomically: a temporary
// file next to it, renamed over it only after a successful write and flush.
void write_file_atomically(const std::string& path, const std::function<void(std::FILE*)>& fill);

}  // namespace ffn
