#include "io/gguf_file.h"

#include <fmt/format.h>

#include "core/byte_reader.h"
#include "core/error.h"

namespace ffn {

namespace {

constexpr uint32_t kMagic = 0x46554747;  // "GGUF" little-endian
constexpr int kMaxArrayDepth = 4;
constexpr uint32_t kMaxDims = 4;
constexpr uint64_t kMaxStringBytes = 1ull << 30;
// A GgufValue takes ~100 bytes, so a u8 array costs 100x its file size: an
// 8 MB file took 900 MB. Real files hold < 1M elements in all (tokens,
// scores, types, merges of a 256k vocabulary); this caps the memory at ~400 MB.
constexpr uint64_t kMaxArrayElements = 1ull << 22;

// Smallest encoded size of one value of type t: bounds array counts before
// anything is allocated, so a count of 2^60 fails at once.
uint64_t min_encoded_size(GgufType t) {
  switch (t) {
    case GgufType::U8: case GgufType::I8: case GgufType::BOOL: return 1;
    case GgufType::U16: case GgufType::I16: return 2;
    case GgufType::U32: case GgufType::I32: case GgufType::F32: return 4;
    case GgufType::U64: case GgufType::I64: case GgufType::F64: return 8;
    case GgufType::STRING: return 8;
    case GgufType::ARRAY: return 12;
  }
  return 1;
}

bool valid_type(uint32_t t) { return t <= 12; }

std::string read_string(ByteReader& r, const std::string& field) {
  const uint64_t len = r.read<uint64_t>(field.c_str());
  if (len > kMaxStringBytes || len > r.remaining())
    fail(r.where(), field, "string length <= " + std::to_string(r.remaining()) + " bytes left",
         std::to_string(len));
  return std::string(r.bytes(len, field.c_str()));
}

// `elements_left`: of the kMaxArrayElements budget of the whole file.
GgufValue read_value(ByteReader& r, GgufType type, const std::string& field, int depth,
                     uint64_t& elements_left) {
  GgufValue v;
  v.type = type;
  const char* f = field.c_str();
  switch (type) {
    case GgufType::U8: v.u = r.read<uint8_t>(f); break;
    case GgufType::I8: v.i = r.read<int8_t>(f); break;
    case GgufType::U16: v.u = r.read<uint16_t>(f); break;
    case GgufType::I16: v.i = r.read<int16_t>(f); break;
    case GgufType::U32: v.u = r.read<uint32_t>(f); break;
    case GgufType::I32: v.i = r.read<int32_t>(f); break;
    case GgufType::F32: v.f = r.read<float>(f); break;
    case GgufType::U64: v.u = r.read<uint64_t>(f); break;
    case GgufType::I64: v.i = r.read<int64_t>(f); break;
    case GgufType::F64: v.f = r.read<double>(f); break;
    case GgufType::BOOL: {
      const uint8_t b = r.read<uint8_t>(f);
      if (b > 1) fail(r.where(), field, "bool 0 or 1", std::to_string(b));
      v.u = b;
      break;
    }
    case GgufType::STRING: v.s = read_string(r, field); break;
    case GgufType::ARRAY: {
      if (depth >= kMaxArrayDepth)
        fail(r.where(), field, "arrays nested at most " + std::to_string(kMaxArrayDepth) + " deep",
             "deeper nesting");
      const uint32_t et = r.read<uint32_t>(f);
      if (!valid_type(et)) fail(r.where(), field, "array element type 0..12", std::to_string(et));
      v.elem_type = static_cast<GgufType>(et);
      const uint64_t count = r.read<uint64_t>(f);
      const uint64_t min_size = min_encoded_size(v.elem_type);
      if (count > r.remaining() / min_size)
        fail(r.where(), field,
             fmt::format("array count that fits in the {} bytes left", r.remaining()),
             std::to_string(count));
      if (count > elements_left)
        fail(r.where(), field,
             fmt::format("at most {} array elements in all metadata arrays", kMaxArrayElements),
             fmt::format("{} more", count));
      elements_left -= count;
      v.array.reserve(static_cast<size_t>(count));
      for (uint64_t k = 0; k < count; ++k)
        v.array.push_back(read_value(r, v.elem_type, field, depth + 1, elements_left));
      break;
    }
  }
  return v;
}

}  // namespace

GgufFile::GgufFile(const std::string& path) : path_(path) {
  file_ = std::make_unique<MappedFile>(path);
  parse(file_->data(), file_->size());
}

GgufFile::GgufFile(const uint8_t* data, size_t size, const std::string& name) : path_(name) {
  parse(data, size);
}

void GgufFile::parse(const uint8_t* data, size_t size) {
  ByteReader r(data, size, path_);
  const uint32_t magic = r.read<uint32_t>("magic");
  if (magic != kMagic) fail(path_, "magic", "\"GGUF\"", fmt::format("0x{:08x}", magic));
  version_ = r.read<uint32_t>("version");
  if (version_ != 2 && version_ != 3) fail(path_, "version", "2 or 3", std::to_string(version_));
  const uint64_t n_tensors = r.read<uint64_t>("tensor_count");
  const uint64_t n_kv = r.read<uint64_t>("metadata_kv_count");
  // Each KV takes at least 8 (key length) + 4 (type) + 1 bytes; each tensor
  // info at least 8 + 4 + 4 + 8.
  if (n_kv > r.remaining() / 13)
    fail(path_, "metadata_kv_count", "a count that fits in the file", std::to_string(n_kv));
  if (n_tensors > r.remaining() / 24)
    fail(path_, "tensor_count", "a count that fits in the file", std::to_string(n_tensors));

  metadata_.reserve(static_cast<size_t>(n_kv));
  uint64_t array_elements_left = kMaxArrayElements;
  for (uint64_t k = 0; k < n_kv; ++k) {
    std::string key = read_string(r, fmt::format("metadata[{}].key", k));
    const uint32_t type = r.read<uint32_t>("metadata value type");
    if (!valid_type(type)) fail(path_, key, "value type 0..12", std::to_string(type));
    GgufValue v = read_value(r, static_cast<GgufType>(type), key, 0, array_elements_left);
    if (metadata_index_.count(key)) fail(path_, key, "unique metadata key", "a duplicate");
    metadata_index_[key] = metadata_.size();
    metadata_.emplace_back(std::move(key), std::move(v));
  }

  if (const GgufValue* a = find("general.alignment")) {
    if (a->type != GgufType::U32)
      fail(path_, "general.alignment", "u32", gguf_type_name(a->type));
    if (a->u == 0 || (a->u & (a->u - 1)) != 0 || a->u > (1u << 16))
      fail(path_, "general.alignment", "a power of two <= 65536", std::to_string(a->u));
    alignment_ = static_cast<uint32_t>(a->u);
  }

  struct Info {
    std::string name;
    std::vector<uint64_t> shape;
    DType type;
    uint64_t offset;
    uint64_t bytes;
  };
  std::vector<Info> infos;
  infos.reserve(static_cast<size_t>(n_tensors));
  for (uint64_t k = 0; k < n_tensors; ++k) {
    Info info;
    info.name = read_string(r, fmt::format("tensor[{}].name", k));
    const std::string field =
        info.name.empty() ? fmt::format("tensor[{}] ''", k) : "tensor '" + info.name + "'";
    const uint32_t n_dims = r.read<uint32_t>("tensor n_dims");
    if (n_dims == 0 || n_dims > kMaxDims)
      fail(path_, field + " n_dims", "1.." + std::to_string(kMaxDims), std::to_string(n_dims));
    std::vector<uint64_t> ne(n_dims);
    uint64_t elements = 1;
    for (uint32_t d = 0; d < n_dims; ++d) {
      ne[d] = r.read<uint64_t>("tensor dimension");
      if (ne[d] == 0) fail(path_, field + fmt::format(" dim {}", d), "> 0", "0");
      if (!checked_mul(elements, ne[d], &elements) || elements > (1ull << 50))
        fail(path_, field + " shape", "an element count below 2^50", "a product that overflows");
    }
    info.shape.assign(ne.rbegin(), ne.rend());  // fastest-first -> row-major
    const uint32_t type = r.read<uint32_t>("tensor type");
    const auto dt = dtype_from_gguf(type);
    if (!dt)
      fail(path_, field + " type", "one of F32, F16, BF16, Q8_0, Q4_0",
           "ggml type " + std::to_string(type));
    info.type = *dt;
    if (!dtype_row_ok(info.type, ne[0]))
      fail(path_, field + " dim 0",
           fmt::format("a multiple of {} for {}", dtype_block_elems(info.type), dtype_name(info.type)),
           std::to_string(ne[0]));
    info.bytes = dtype_row_bytes(info.type, ne[0]) * (elements / ne[0]);
    info.offset = r.read<uint64_t>("tensor offset");
    if (info.offset % alignment_ != 0)
      fail(path_, field + " offset", fmt::format("a multiple of {}", alignment_),
           std::to_string(info.offset));
    if (tensor_index_.count(info.name)) fail(path_, field, "unique tensor name", "a duplicate");
    tensor_index_[info.name] = infos.size();
    infos.push_back(std::move(info));
  }

  const uint64_t data_start = (r.offset() + alignment_ - 1) / alignment_ * alignment_;
  if (n_tensors > 0 && data_start > size)
    fail(path_, "tensor data", fmt::format("data section at offset {}", data_start),
         fmt::format("file of {} bytes", size));
  const uint64_t data_size = size - std::min<uint64_t>(data_start, size);
  tensors_.reserve(infos.size());
  for (auto& info : infos) {
    if (info.offset > data_size || info.bytes > data_size - info.offset)
      fail(path_, "tensor '" + info.name + "' data",
           fmt::format("{} bytes at data offset {} within the {} data bytes", info.bytes,
                       info.offset, data_size),
           "data past end of file (truncated file?)");
    WeightTensor t;
    t.name = std::move(info.name);
    t.type = info.type;
    t.shape = std::move(info.shape);
    t.data = data + data_start + info.offset;
    t.bytes = info.bytes;
    tensors_.push_back(std::move(t));
  }
}

const GgufValue* GgufFile::find(const std::string& key) const {
  auto it = metadata_index_.find(key);
  return it == metadata_index_.end() ? nullptr : &metadata_[it->second].second;
}

std::optional<uint64_t> GgufFile::get_uint_opt(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (!v->is_integer()) fail(path_, key, "an integer", gguf_type_name(v->type));
  switch (v->type) {
    case GgufType::I8: case GgufType::I16: case GgufType::I32: case GgufType::I64:
      if (v->i < 0) fail(path_, key, "a non-negative integer", std::to_string(v->i));
      return static_cast<uint64_t>(v->i);
    default:
      return v->u;
  }
}

uint64_t GgufFile::get_uint(const std::string& key) const {
  auto v = get_uint_opt(key);
  if (!v) fail(path_, key, "a metadata key", "none");
  return *v;
}

std::optional<double> GgufFile::get_float_opt(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->is_float()) return v->f;
  fail(path_, key, "f32 or f64", gguf_type_name(v->type));
}

double GgufFile::get_float(const std::string& key) const {
  auto v = get_float_opt(key);
  if (!v) fail(path_, key, "a metadata key", "none");
  return *v;
}

std::optional<std::string> GgufFile::get_string_opt(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::STRING) fail(path_, key, "string", gguf_type_name(v->type));
  return v->s;
}

std::string GgufFile::get_string(const std::string& key) const {
  auto v = get_string_opt(key);
  if (!v) fail(path_, key, "a metadata key", "none");
  return *v;
}

std::optional<bool> GgufFile::get_bool_opt(const std::string& key) const {
  const GgufValue* v = find(key);
  if (!v) return std::nullopt;
  if (v->type != GgufType::BOOL) fail(path_, key, "bool", gguf_type_name(v->type));
  return v->u != 0;
}

const std::vector<GgufValue>* GgufFile::get_array_opt(const std::string& key, GgufType elem) const {
  const GgufValue* v = find(key);
  if (!v) return nullptr;
  if (v->type != GgufType::ARRAY) fail(path_, key, "array", gguf_type_name(v->type));
  if (v->elem_type != elem)
    fail(path_, key, std::string("array of ") + gguf_type_name(elem),
         std::string("array of ") + gguf_type_name(v->elem_type));
  return &v->array;
}

const WeightTensor* GgufFile::find_tensor(const std::string& name) const {
  auto it = tensor_index_.find(name);
  return it == tensor_index_.end() ? nullptr : &tensors_[it->second];
}

}  // namespace ffn
