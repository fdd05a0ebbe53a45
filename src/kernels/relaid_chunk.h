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
#include <type_traits>

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
    // The 32 bytes in both halves, the upper half's 16-bit lanes shifted
    // right by 4, then the low nibble of every byte: a broadcast load, a
    // variable shift and an AND, where a 256-bit AND, shift, AND and a
    // 256-bit insert took two more instructions, one of them a shuffle (the
    // shuffle port also runs the kernels' unpacks).
    const __m512i v = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    const __m512i shift = _mm512_inserti64x4(_mm512_setzero_si512(), _mm256_set1_epi16(4), 1);
    return _mm512_and_si512(_mm512_srlv_epi16(v, shift), _mm512_set1_epi8(0x0f));
  }
}

// Calls f(type_tag, vnni_tag) for the instantiation a relaid kernel runs:
// std::integral_constant tags for the weights' type (Q8_0 or Q4_0) and for
// vpdpbusd (true) or its AVX-512BW form (false, kernels/byte_dot.h).
template <typename F>
void with_relaid_kernel(DType type, bool vnni, const F& f) {
  using Q8 = std::integral_constant<DType, DType::Q8_0>;
  using Q4 = std::integral_constant<DType, DType::Q4_0>;
  if (type == DType::Q8_0 && vnni) f(Q8(), std::true_type());
  else if (type == DType::Q8_0) f(Q8(), std::false_type());
  else if (vnni) f(Q4(), std::true_type());
  else f(Q4(), std::false_type());
}

}  // namespace ffn
