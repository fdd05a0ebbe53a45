// GGUF v2/v3 reader. The file is memory-mapped; tensor data is used in place.
//
// The reader trusts nothing: every length, count, offset and dimension is
// checked against the file size before use, so a truncated or crafted file
// yields an ffn::Error naming the file and the field, never a crash, a read
// out of bounds or a huge allocation.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/mapped_file.h"
#include "io/gguf_value.h"
#include "io/weight_tensor.h"

namespace ffn {

class GgufFile {
 public:
  static constexpr uint32_t kDefaultAlignment = 32;

  // Parses the file at `path` (mmap). Throws ffn::Error on any malformation.
  explicit GgufFile(const std::string& path);
  // Parses an in-memory image (for fuzzing); `name` is used in messages.
  GgufFile(const uint8_t* data, size_t size, const std::string& name);

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint32_t alignment() const { return alignment_; }

  const std::vector<std::pair<std::string, GgufValue>>& metadata() const { return metadata_; }
  const GgufValue* find(const std::string& key) const;
  bool has(const std::string& key) const { return find(key) != nullptr; }

  // Typed accessors: throw naming the key if missing or of the wrong type.
  uint64_t get_uint(const std::string& key) const;
  std::optional<uint64_t> get_uint_opt(const std::string& key) const;
  double get_float(const std::string& key) const;
  std::optional<double> get_float_opt(const std::string& key) const;
  std::string get_string(const std::string& key) const;
  std::optional<std::string> get_string_opt(const std::string& key) const;
  std::optional<bool> get_bool_opt(const std::string& key) const;
  // Array whose elements must all be of `elem`; nullptr if key absent.
  const std::vector<GgufValue>* get_array_opt(const std::string& key, GgufType elem) const;

  const std::vector<WeightTensor>& tensors() const { return tensors_; }
  const WeightTensor* find_tensor(const std::string& name) const;

 private:
  void parse(const uint8_t* data, size_t size);

  std::string path_;
  std::unique_ptr<MappedFile> file_;
  uint32_t version_ = 0;
  uint32_t alignment_ = kDefaultAlignment;
  std::vector<std::pair<std::string, GgufValue>> metadata_;
  std::map<std::string, size_t> metadata_index_;
  std::vector<WeightTensor> tensors_;
  std::map<std::string, size_t> tensor_index_;
};

}  // namespace ffn
