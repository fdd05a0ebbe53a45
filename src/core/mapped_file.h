// A read-only memory-mapped file. Weights are used in place from the mapping
// wherever their layout allows, so loading a model costs no copy.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace ffn {

class MappedFile {
 public:
  // Throws ffn::Error naming the path if it cannot be opened or mapped.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;

  const uint8_t* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

// Tells the kernel that this process will not read [p, p + n) soon, if
// that range lies in a live MappedFile: the whole pages inside it leave the
// process's resident set (a later read faults them back in from the page
// cache). Used after a weight has been copied into another layout, so the
// original bytes are not counted twice. No-op for memory that is not a file
// mapping: dropping anonymous pages would lose their contents.
void release_mapped_pages(const void* p, size_t n);

// Reads a whole (small) text file; throws ffn::Error naming the path.
std::string read_text_file(const std::string& path);
// At most the first max_bytes of a file (to sniff its kind).
std::string read_text_file_prefix(const std::string& path, size_t max_bytes);

}  // namespace ffn
