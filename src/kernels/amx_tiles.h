// Intel AMX tiles: the tile configuration and the tile instructions the
// packed kernels use (kernels/amx_packed-inl.h).
//
// AMX adds eight tile registers tmm0..tmm7 of up to 16 rows x 64 bytes and
// matrix instructions on them: TDPBSSD multiplies an M x K tile of signed
// bytes (A) with a K/4 x N*4 tile of signed bytes laid out four bytes per
// column (B) into an M x N tile of int32 (C); TDPBF16PS does the same for
// bf16 pairs into fp32. Intel SDM vol. 2, "TDPBSSD", "TDPBF16PS",
// "LDTILECFG"; Linux Documentation/arch/x86/xstate.rst for the permission.
//
// The kernels are templates over a tile unit: HardwareTiles below issues the
// instructions; tests/emulated_tiles.h implements the SDM's definitions in
// scalar code (with its shape checks), so the kernels' layout and arithmetic
// are tested on CPUs without AMX.
#pragma once

#include <cstdint>
#include <cstring>

namespace ffn {

// LDTILECFG's 64-byte memory operand, palette 1: per tile its rows and its
// bytes per row (colsb); an unused tile has both 0.
struct alignas(64) TileConfig {
  uint8_t palette = 1;
  uint8_t start_row = 0;
  uint8_t reserved[14] = {};
  uint16_t colsb[16] = {};
  uint8_t rows[16] = {};

  void set(int tile, int n_rows, int bytes_per_row) {
    rows[tile] = uint8_t(n_rows);
    colsb[tile] = uint16_t(bytes_per_row);
  }
  bool operator==(const TileConfig& o) const { return std::memcmp(this, &o, sizeof(*this)) == 0; }
};
static_assert(sizeof(TileConfig) == 64);

constexpr int kTileMaxRows = 16;
constexpr int kTileMaxBytes = 64;

// The instructions themselves (GNU assembler syntax, operands reversed).
// The tile numbers are template arguments because the instructions encode
// them; "memory" clobbers keep the compiler from moving loads and stores of
// the scratch buffers across the tile loads and stores.
struct HardwareTiles {
  static void configure(const TileConfig& c) { asm volatile("ldtilecfg %0" ::"m"(c) : "memory"); }
  static void release() { asm volatile("tilerelease" ::: "memory"); }
  template <int T>
  static void zero() {
    asm volatile("tilezero %%tmm%c0" ::"i"(T));
  }
  template <int T>
  static void load(const void* p, int64_t stride) {
    asm volatile("tileloadd (%0,%1,1), %%tmm%c2" ::"r"(p), "r"(stride), "i"(T) : "memory");
  }
  template <int T>
  static void store(void* p, int64_t stride) {
    asm volatile("tilestored %%tmm%c2, (%0,%1,1)" ::"r"(p), "r"(stride), "i"(T) : "memory");
  }
  // C += A (signed bytes) . B (signed bytes), int32.
  template <int C, int A, int B>
  static void dot_s8s8() {
    asm volatile("tdpbssd %%tmm%c2, %%tmm%c1, %%tmm%c0" ::"i"(C), "i"(A), "i"(B));
  }
  // C += A . B, bf16 pairs, fp32.
  template <int C, int A, int B>
  static void dot_bf16() {
    asm volatile("tdpbf16ps %%tmm%c2, %%tmm%c1, %%tmm%c0" ::"i"(C), "i"(A), "i"(B));
  }
};

}  // namespace ffn
