// Bounds-checked little-endian cursor over an untrusted byte range.
//
// Every loader parses through this class, so that a truncated or hostile file
// produces an ffn::Error naming the file, the field being read and the offset,
// and can never read outside the range.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <type_traits>

#include "core/error.h"

namespace ffn {

class ByteReader {
 public:
  ByteReader(const uint8_t* data, size_t size, std::string where)
      : data_(data), size_(size), where_(std::move(where)) {}

  size_t offset() const { return pos_; }
  size_t size() const { return size_; }
  size_t remaining() const { return size_ - pos_; }
  const std::string& where() const { return where_; }

  template <typename T>
  T read(const char* field) {
    static_assert(std::is_trivially_copyable_v<T>);
    require(sizeof(T), field);
    T v;
    std::memcpy(&v, data_ + pos_, sizeof(T));
    pos_ += sizeof(T);
    return v;
  }

  // Returns a view of the next n bytes (valid while the underlying data is).
  std::string_view bytes(uint64_t n, const char* field) {
    require(n, field);
    std::string_view v(reinterpret_cast<const char*>(data_ + pos_), static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return v;
  }

  void skip(uint64_t n, const char* field) {
    require(n, field);
    pos_ += static_cast<size_t>(n);
  }

  void seek(uint64_t offset, const char* field) {
    if (offset > size_)
      fail(where_, field, "offset <= file size " + std::to_string(size_), std::to_string(offset));
    pos_ = static_cast<size_t>(offset);
  }

  // Fails unless n more bytes are available.
  void require(uint64_t n, const char* field) const {
    if (n > size_ - pos_)
      fail(where_, field,
           std::to_string(n) + " bytes at offset " + std::to_string(pos_),
           "only " + std::to_string(size_ - pos_) + " left (truncated file?)");
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
  std::string where_;
};

// a*b with overflow detection; false on overflow.
inline bool checked_mul(uint64_t a, uint64_t b, uint64_t* out) {
  return !__builtin_mul_overflow(a, b, out);
}

}  // namespace ffn
