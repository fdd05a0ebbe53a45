#include "io/gguf_writer.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

#include "core/error.h"

namespace ffn {

namespace {

void put_bytes(std::FILE* f, const void* p, size_t n, const std::string& path) {
  if (n && std::fwrite(p, 1, n, f) != n) fail(path, std::string("write failed: ") + std::strerror(errno));
}

template <typename T>
void put(std::FILE* f, T v, const std::string& path) {
  put_bytes(f, &v, sizeof(T), path);
}

void put_string(std::FILE* f, const std::string& s, const std::string& path) {
  put<uint64_t>(f, s.size(), path);
  put_bytes(f, s.data(), s.size(), path);
}

void put_value(std::FILE* f, const GgufValue& v, const std::string& path) {
  switch (v.type) {
    case GgufType::U8: put<uint8_t>(f, static_cast<uint8_t>(v.u), path); break;
    case GgufType::I8: put<int8_t>(f, static_cast<int8_t>(v.i), path); break;
    case GgufType::U16: put<uint16_t>(f, static_cast<uint16_t>(v.u), path); break;
    case GgufType::I16: put<int16_t>(f, static_cast<int16_t>(v.i), path); break;
    case GgufType::U32: put<uint32_t>(f, static_cast<uint32_t>(v.u), path); break;
    case GgufType::I32: put<int32_t>(f, static_cast<int32_t>(v.i), path); break;
    case GgufType::F32: put<float>(f, static_cast<float>(v.f), path); break;
    case GgufType::U64: put<uint64_t>(f, v.u, path); break;
    case GgufType::I64: put<int64_t>(f, v.i, path); break;
    case GgufType::F64: put<double>(f, v.f, path); break;
    case GgufType::BOOL: put<uint8_t>(f, v.u ? 1 : 0, path); break;
    case GgufType::STRING: put_string(f, v.s, path); break;
    case GgufType::ARRAY:
      put<uint32_t>(f, static_cast<uint32_t>(v.elem_type), path);
      put<uint64_t>(f, v.array.size(), path);
      for (const auto& e : v.array) put_value(f, e, path);
      break;
  }
}

void pad_to(std::FILE* f, uint64_t& pos, uint64_t align, const std::string& path) {
  static const char zeros[64] = {};
  while (pos % align) {
    const uint64_t n = std::min<uint64_t>(align - pos % align, sizeof zeros);
    put_bytes(f, zeros, n, path);
    pos += n;
  }
}

}  // namespace

void GgufWriter::set(const std::string& key, GgufValue value) {
  for (auto& kv : metadata_)
    if (kv.first == key) {
      kv.second = std::move(value);
      return;
    }
  metadata_.emplace_back(key, std::move(value));
}

void GgufWriter::add_tensor(const WeightTensor& tensor) { tensors_.push_back(tensor); }

void GgufWriter::write(const std::string& path) const {
  std::set<std::string> names;
  for (const auto& t : tensors_)
    if (!names.insert(t.name).second) fail(path, "tensor '" + t.name + "'", "unique name", "a duplicate");

  write_file_atomically(path, [&](std::FILE* f) {
    uint64_t pos = 0;
    auto counted = [&](auto&& writer) {
      const long before = std::ftell(f);
      writer();
      pos += static_cast<uint64_t>(std::ftell(f) - before);
    };
    counted([&] {
      put<uint32_t>(f, 0x46554747, path);
      put<uint32_t>(f, 3, path);
      put<uint64_t>(f, tensors_.size(), path);
      bool has_alignment = false;
      for (const auto& kv : metadata_) has_alignment |= kv.first == "general.alignment";
      put<uint64_t>(f, metadata_.size() + (has_alignment ? 0 : 1), path);
      for (const auto& [key, value] : metadata_) {
        put_string(f, key, path);
        put<uint32_t>(f, static_cast<uint32_t>(value.type), path);
        if (key == "general.alignment") {
          put<uint32_t>(f, kAlignment, path);
        } else {
          put_value(f, value, path);
        }
      }
      if (!has_alignment) {
        put_string(f, "general.alignment", path);
        put<uint32_t>(f, static_cast<uint32_t>(GgufType::U32), path);
        put<uint32_t>(f, kAlignment, path);
      }
      uint64_t offset = 0;
      for (const auto& t : tensors_) {
        put_string(f, t.name, path);
        put<uint32_t>(f, static_cast<uint32_t>(t.shape.size()), path);
        for (auto it = t.shape.rbegin(); it != t.shape.rend(); ++it) put<uint64_t>(f, *it, path);
        put<uint32_t>(f, static_cast<uint32_t>(t.type), path);
        put<uint64_t>(f, offset, path);
        offset += (t.bytes + kAlignment - 1) / kAlignment * kAlignment;
      }
    });
    pad_to(f, pos, kAlignment, path);
    for (const auto& t : tensors_) {
      put_bytes(f, t.data, t.bytes, path);
      pos += t.bytes;
      pad_to(f, pos, kAlignment, path);
    }
  });
}

void write_file_atomically(const std::string& path, const std::function<void(std::FILE*)>& fill) {
  std::string tmp = path + ".tmp.XXXXXX";
  const int fd = ::mkstemp(tmp.data());
  if (fd < 0) fail(path, std::string("cannot create temporary file: ") + std::strerror(errno));
  std::FILE* f = ::fdopen(fd, "wb");
  if (!f) {
    ::close(fd);
    ::unlink(tmp.c_str());
    fail(path, "cannot open temporary file");
  }
  try {
    fill(f);
    if (std::fflush(f) != 0 || ::fsync(fileno(f)) != 0)
      fail(path, std::string("write failed: ") + std::strerror(errno));
  } catch (...) {
    std::fclose(f);
    ::unlink(tmp.c_str());
    throw;
  }
  if (std::fclose(f) != 0) {
    ::unlink(tmp.c_str());
    fail(path, std::string("write failed: ") + std::strerror(errno));
  }
  ::chmod(tmp.c_str(), 0644);
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    const int err = errno;
    ::unlink(tmp.c_str());
    fail(path, std::string("cannot rename temporary file into place: ") + std::strerror(err));
  }
}

}  // namespace ffn
