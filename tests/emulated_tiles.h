// A scalar model of the AMX tile unit, written from the Intel SDM's
// definitions of LDTILECFG, TILELOADD, TILESTORED, TILEZERO, TILERELEASE,
// TDPBSSD and TDPBF16PS (vol. 2), for running the tile kernels
// (kernels/amx_packed-inl.h) on CPUs without AMX. The checks that raise #GP
// or #UD on hardware (a bad configuration, an unconfigured tile, shapes that
// do not multiply, tiles not distinct) throw here instead, so a kernel that
// would fault on an AMX CPU fails its test here.
#pragma once

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>

#include "core/half.h"
#include "kernels/amx_tiles.h"

namespace ffn::test {

struct EmulatedTiles {
  struct State {
    TileConfig config;
    bool configured = false;
    alignas(64) uint8_t tile[8][kTileMaxRows][kTileMaxBytes] = {};
  };
  // The registers, per thread as on hardware.
  static State& state() {
    thread_local State s;
    return s;
  }
  // Uses of the unit since the last reset, for tests that check a kernel ran on it.
  static int64_t& products() {
    thread_local int64_t n = 0;
    return n;
  }

  [[noreturn]] static void fault(const std::string& what) { throw std::logic_error("AMX fault: " + what); }

  static void configure(const TileConfig& c) {
    if (c.palette != 1) fault("palette " + std::to_string(c.palette) + " (only palette 1)");
    if (c.start_row != 0) fault("start_row not 0");
    for (uint8_t r : c.reserved)
      if (r != 0) fault("reserved byte set");
    for (int t = 0; t < 16; ++t) {
      if (t >= 8 && (c.rows[t] != 0 || c.colsb[t] != 0)) fault("tile " + std::to_string(t) + " beyond palette 1");
      if (c.rows[t] > kTileMaxRows || c.colsb[t] > kTileMaxBytes)
        fault("tile " + std::to_string(t) + " larger than 16 x 64 bytes");
      if ((c.rows[t] == 0) != (c.colsb[t] == 0)) fault("tile " + std::to_string(t) + " has rows or colsb 0, not both");
    }
    State& s = state();
    s.config = c;
    s.configured = true;
    std::memset(s.tile, 0, sizeof(s.tile));
  }

  static void release() {
    State& s = state();
    s.configured = false;
    std::memset(s.tile, 0, sizeof(s.tile));
  }

  static int rows(int t) { return state().config.rows[t]; }
  static int colsb(int t) { return state().config.colsb[t]; }
  static void require(int t) {
    if (!state().configured) fault("tile instruction before LDTILECFG");
    if (rows(t) == 0 || colsb(t) == 0) fault("tile " + std::to_string(t) + " not configured");
  }

  template <int T>
  static void zero() {
    require(T);
    std::memset(state().tile[T], 0, sizeof(state().tile[T]));
  }

  // Rows beyond the configuration and bytes beyond colsb read as zero.
  template <int T>
  static void load(const void* p, int64_t stride) {
    require(T);
    uint8_t(&tile)[kTileMaxRows][kTileMaxBytes] = state().tile[T];
    std::memset(tile, 0, sizeof(tile));
    for (int r = 0; r < rows(T); ++r) std::memcpy(tile[r], static_cast<const uint8_t*>(p) + r * stride, size_t(colsb(T)));
  }

  template <int T>
  static void store(void* p, int64_t stride) {
    require(T);
    for (int r = 0; r < rows(T); ++r)
      std::memcpy(static_cast<uint8_t*>(p) + r * stride, state().tile[T][r], size_t(colsb(T)));
  }

  // The shape rules of TDPBSSD / TDPBF16PS: C = A (M x K) . B (K/4 x N).
  template <int C, int A, int B>
  static void require_product() {
    static_assert(C != A && C != B && A != B, "tiles must be distinct");
    require(C);
    require(A);
    require(B);
    if (colsb(C) % 4 != 0 || colsb(A) % 4 != 0) fault("colsb not a multiple of 4");
    if (colsb(A) / 4 != rows(B)) fault("A's K / 4 is not B's rows");
    if (rows(C) != rows(A)) fault("C and A rows differ");
    if (colsb(C) != colsb(B)) fault("C and B colsb differ");
    ++products();
  }

  template <int C, int A, int B>
  static void dot_s8s8() {
    require_product<C, A, B>();
    State& s = state();
    for (int m = 0; m < rows(C); ++m)
      for (int n = 0; n < colsb(C) / 4; ++n) {
        int64_t sum = 0;
        for (int k = 0; k < rows(B); ++k)
          for (int i = 0; i < 4; ++i)
            sum += int64_t(int8_t(s.tile[A][m][4 * k + i])) * int64_t(int8_t(s.tile[B][k][4 * n + i]));
        uint32_t c;
        std::memcpy(&c, &s.tile[C][m][4 * n], 4);
        c += uint32_t(sum);  // int32 arithmetic wraps on the tile unit
        std::memcpy(&s.tile[C][m][4 * n], &c, 4);
      }
  }

  // Inputs are bf16, widened exactly; the SDM's order: pair element 0,
  // then 1, each added to the fp32 sum.
  template <int C, int A, int B>
  static void dot_bf16() {
    require_product<C, A, B>();
    State& s = state();
    auto bf16 = [](const uint8_t* p) {
      uint16_t h;
      std::memcpy(&h, p, 2);
      return bf16_to_f32(h);
    };
    for (int m = 0; m < rows(C); ++m)
      for (int n = 0; n < colsb(C) / 4; ++n) {
        float c;
        std::memcpy(&c, &s.tile[C][m][4 * n], 4);
        for (int k = 0; k < rows(B); ++k)
          for (int i = 0; i < 2; ++i) c += bf16(&s.tile[A][m][4 * k + 2 * i]) * bf16(&s.tile[B][k][4 * n + 2 * i]);
        std::memcpy(&s.tile[C][m][4 * n], &c, 4);
      }
  }
};

}  // namespace ffn::test
