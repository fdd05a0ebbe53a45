// Row placement (kernels/row_placement.h): where place_rows puts each row,
// and the names the CLI takes.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>

#include "kernels/row_placement.h"

namespace ffn {
namespace {

TEST(RowPlacement, PackedRowsFollowEachOther) {
  const PlacedRows r = place_rows(7, 2176, RowPlacement::kPacked);
  ASSERT_NE(r.first, nullptr);
  EXPECT_EQ(r.pitch, 2176u);
  std::memset(r.first.get(), 0x5a, 7 * 2176);  // the whole span is ours (ASan checks)
}

// Each row of at most a page ends where a 4 KiB page ends, whatever its
// size (not a multiple of 64, exactly a page) and wherever the allocator's
// buffer starts (several allocations in a row: packed_weight_buffer hands
// out 64-byte aligned pieces of one chunk). Longer rows stay back to back.
TEST(RowPlacement, PageEndRowsEachEndAPage) {
  for (const uint64_t row_bytes : {uint64_t(100), uint64_t(1152), uint64_t(2176), uint64_t(4096), uint64_t(4160),
                                   uint64_t(11968)})
    for (const int64_t n_rows : {int64_t(1), int64_t(3), int64_t(40)}) {
      const PlacedRows r = place_rows(n_rows, row_bytes, RowPlacement::kPageEnds);
      ASSERT_NE(r.first, nullptr);
      EXPECT_EQ(r.pitch, row_bytes <= 4096 ? 4096u : row_bytes) << row_bytes;
      for (int64_t j = 0; j < n_rows; ++j) {
        uint8_t* row = r.first.get() + uint64_t(j) * r.pitch;
        if (row_bytes <= 4096) {
          EXPECT_EQ((reinterpret_cast<uintptr_t>(row) + row_bytes) % 4096, 0u) << row_bytes << " row " << j;
        }
        std::memset(row, int(j), row_bytes);
      }
      for (int64_t j = 0; j < n_rows; ++j) EXPECT_EQ(r.first.get()[uint64_t(j) * r.pitch + row_bytes - 1], uint8_t(j));
    }
  EXPECT_EQ(place_rows(0, 2176, RowPlacement::kPageEnds).pitch, 4096u);
  EXPECT_THROW(place_rows(-1, 2176, RowPlacement::kPageEnds), std::invalid_argument);
}

TEST(RowPlacement, NamesRoundTrip) {
  for (const RowPlacement p : {RowPlacement::kPacked, RowPlacement::kPageEnds})
    EXPECT_EQ(parse_row_placement(row_placement_name(p)), p);
  EXPECT_FALSE(parse_row_placement("page").has_value());
  EXPECT_FALSE(parse_row_placement("").has_value());
  EXPECT_EQ(sparse_row_placement(), RowPlacement::kPacked);  // the default
}

}  // namespace
}  // namespace ffn
