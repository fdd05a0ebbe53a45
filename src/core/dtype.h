// Element types of weight tensors, with GGUF's numbering (ggml_type) so that
// files move between ffn.cpp and llama.cpp unchanged.
//
// Quantized types store blocks of 32 weights. The block layouts are defined in
// kernels/quant_blocks.h; this header only knows their sizes.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>

namespace ffn {

enum class DType : uint32_t {
  F32 = 0,
  F16 = 1,
  Q4_0 = 2,
  Q8_0 = 8,
  BF16 = 30,
};

std::string dtype_name(DType t);
// Parses "f32", "F16", "q8_0", ... (case-insensitive). nullopt if unknown.
std::optional<DType> parse_dtype(const std::string& name);
// GGUF type id -> DType, nullopt for types this engine does not read.
std::optional<DType> dtype_from_gguf(uint32_t id);

// Number of elements per block (1 for plain types) and bytes per block.
size_t dtype_block_elems(DType t);
size_t dtype_block_bytes(DType t);

// Bytes of a row of `n` elements; n must be a multiple of the block size
// (callers check with dtype_row_ok first).
bool dtype_row_ok(DType t, uint64_t n);
uint64_t dtype_row_bytes(DType t, uint64_t n);

}  // namespace ffn
