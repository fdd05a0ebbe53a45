// One 64-output chunk of the VNNI row layout of kernels/sparse_input_q8.h,
// as the two kernels that read that layout load it (sparse_input_q8.cpp:
// rows of W^T; gather_rows_q8.cpp: rows of W).
//
// A chunk holds 64 weights as unsigned bytes w + zero, in the layout's
// permuted order. Q8_0 stores them as 64 bytes (zero 128). Q4_0 stores
// them as 32 bytes, byte i holding positions i (low nibble) and i + 32
// (high nibble) (zero 8, the nibbles of the file): one AND, one shift and
// one insert give the same 64 bytes, so everything after the load is
// shared.
#pragma once

#include <immintrin.h>

#include <cstdint>

#include "core/dtype.h"
#include "kernels/matmul_quant.h"

namespace ffn {

inline constexpr int64_t kRelaidChunk = 64;  // outputs per chunk: two blocks of 32

// Stored bytes per chunk (the zero point of the stored values:
// kernels/byte_dot.h).
template <DType T>
constexpr int64_t relaid_chunk_bytes() {
  static_assert(T == DType::Q8_0 || T == DType::Q4_0);
  return T == DType::Q8_0 ? 64 : 32;
}

// The chunk at p as 64 unsigned bytes in position order.
template <DType T>
FFN_VNNI_TARGET inline __m512i load_relaid_chunk(const uint8_t* p) {
  if constexpr (T == DType::Q8_0) {
    return _mm512_loadu_si512(p);
  } else {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    const __m256i low4 = _mm256_set1_epi8(0x0f);
    return _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_and_si256(v, low4)),
                              _mm256_and_si256(_mm256_srli_epi16(v, 4), low4), 1);
  }
}

}  // namespace ffn
