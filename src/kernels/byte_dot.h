// The 4-byte integer dot product every int8 kernel is built on (the packed
// tiles, kernels/packed_quant.h; the input-sparse and gather kernels on the
// re-laid rows, kernels/sparse_input_q8.h and gather_rows_q8.h): per 32-bit
// lane, s + sum_{i<4} u_i x_i of weights stored unsigned, u = w + zero
// (Q8_0: w + 128; Q4_0: its nibble, w + 8), and signed int8 activations x
// (|x| <= 127, as every activation quantizer here makes them).
//
//  - kVnni: one vpdpbusd. The caller subtracts zero * sum(x) (kZero).
//  - Without VNNI (AVX-512BW only, e.g. Skylake-X): vpmaddubsw (pairs of
//    unsigned x signed bytes, added into int16 with saturation), vpmaddwd
//    by ones (pairs of those into int32), vpaddd. Q4_0's u <= 15 keeps the
//    pairs below 2 * 15 * 127, exact. Q8_0's u <= 255 would saturate
//    (2 * 255 * 127 > 32767), so Q8_0 multiplies |w| <= 128 with x carrying
//    w's sign (|x| <= 127 negates safely): pairs <= 2 * 128 * 127 = 32512,
//    exact, and there is no zero point (kZero = 0).
// Both give the same integers, so a kernel's result does not depend on the
// path. Weights are prepared once for all the activation vectors they meet
// (several tokens), which keeps the per-token cost at 2-3 instructions.
//
// (Instantiated under FFN_VNNI_TARGET for both paths; the kVnni = false one
// uses no VNNI instruction, and the tests run it on CPUs without VNNI.)
#pragma once

#include <immintrin.h>

#include <cstdint>
#include <cstring>

#include "core/dtype.h"
#include "kernels/matmul_quant.h"

namespace ffn {

// The 4 bytes at p in every 32-bit lane.
FFN_VNNI_TARGET inline __m512i broadcast4(const int8_t* p) {
  int32_t v;
  std::memcpy(&v, p, 4);
  return _mm512_set1_epi32(v);
}

template <DType T, bool kVnni>
struct ByteDot {
  static_assert(T == DType::Q8_0 || T == DType::Q4_0);
  static constexpr bool kSignedWeights = !kVnni && T == DType::Q8_0;
  // The zero point the caller subtracts: zero * sum(x) per block.
  static constexpr int32_t kZero = kSignedWeights ? 0 : T == DType::Q8_0 ? 128 : 8;

  struct Weights {
    __m512i bytes;         // u, or |w| for signed weights
    __mmask64 negative;    // signed weights: the bytes whose w < 0
  };

  FFN_VNNI_TARGET static inline Weights prepare(__m512i u) {
    if constexpr (kSignedWeights) {
      const __m512i w = _mm512_xor_si512(u, _mm512_set1_epi8(char(0x80)));
      return {_mm512_abs_epi8(w), _mm512_movepi8_mask(w)};
    } else {
      return {u, 0};
    }
  }

  FFN_VNNI_TARGET static inline __m512i accumulate(__m512i s, const Weights& w, __m512i x) {
    if constexpr (kVnni) {
      return _mm512_dpbusd_epi32(s, w.bytes, x);
    } else {
      if constexpr (kSignedWeights) x = _mm512_mask_sub_epi8(x, w.negative, _mm512_setzero_si512(), x);
      return add_pairs(s, _mm512_maddubs_epi16(w.bytes, x));
    }
  }

  // accumulate() with x = the 4 bytes at x4 in every lane. With VNNI, one
  // vpdpbusd that broadcasts them from memory itself ({1to16}): GCC 12 does
  // not fold _mm512_set1_epi32 of a load into the instruction, and the
  // separate vpbroadcastd costs 8 of the ~43 instructions of a Q4_0 packed
  // tile-block, which reads DRAM 2-3% faster without them (one token,
  // BM_PackedPrefetch's alternating harness, 1 and 2 threads, Zen 5).
  FFN_VNNI_TARGET static inline __m512i accumulate_broadcast(__m512i s, const Weights& w, const int8_t* x4) {
    if constexpr (kVnni) {
      asm("vpdpbusd %2%{1to16%}, %1, %0" : "+v"(s) : "v"(w.bytes), "m"(*reinterpret_cast<const int32_t*>(x4)));
      return s;
    } else {
      return accumulate(s, w, broadcast4(x4));
    }
  }

  // s + the int16 lanes of `pairs` added in pairs into int32 (vpmaddwd by
  // ones, vpaddd). The empty asm hides the product from the optimizer:
  // these functions are compiled with VNNI enabled (one target for both
  // paths), and clang fuses vpmaddwd + vpaddd into VNNI's vpdpwssd, which
  // the CPUs that take this path lack (SIGILL in the clang build's tests on
  // a Skylake-X).
  FFN_VNNI_TARGET static inline __m512i add_pairs(__m512i s, __m512i pairs) {
    __m512i sums = _mm512_madd_epi16(pairs, _mm512_set1_epi16(1));
    asm("" : "+v"(sums));
    return _mm512_add_epi32(s, sums);
  }
};

}  // namespace ffn
