// Row placement (kernels/row_placement.h): where place_rows puts each row,
// and the names the CLI takes.
#include <gtest/gtest.h>

#include <cstdint>
#include <cstring>
#include <string>

#include "core/cpu_vendor.h"
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
// Under `auto`, only rows of 2-4 KiB (at most doubled by the page), and
// only on Intel CPUs.
TEST(RowPlacement, PageEndRowsEachEndAPage) {
  for (const RowPlacement placement : {RowPlacement::kPageEnds, RowPlacement::kAuto})
    for (const uint64_t row_bytes : {uint64_t(100), uint64_t(1152), uint64_t(2047), uint64_t(2048), uint64_t(2176),
                                     uint64_t(4096), uint64_t(4160), uint64_t(11968)})
      for (const int64_t n_rows : {int64_t(1), int64_t(3), int64_t(40)}) {
        const std::string what = std::string(row_placement_name(placement)) + " " + std::to_string(row_bytes);
        const bool page_ends =
            row_bytes <= 4096 && (placement == RowPlacement::kPageEnds || (row_bytes >= 2048 && cpu_is_intel()));
        EXPECT_EQ(rows_end_pages(row_bytes, placement), page_ends) << what;
        const PlacedRows r = place_rows(n_rows, row_bytes, placement);
        ASSERT_NE(r.first, nullptr);
        EXPECT_EQ(r.pitch, page_ends ? 4096u : row_bytes) << what;
        for (int64_t j = 0; j < n_rows; ++j) {
          uint8_t* row = r.first.get() + uint64_t(j) * r.pitch;
          if (page_ends) {
            EXPECT_EQ((reinterpret_cast<uintptr_t>(row) + row_bytes) % 4096, 0u) << what << " row " << j;
          }
          std::memset(row, int(j), row_bytes);
        }
        for (int64_t j = 0; j < n_rows; ++j)
          EXPECT_EQ(r.first.get()[uint64_t(j) * r.pitch + row_bytes - 1], uint8_t(j)) << what;
      }
  EXPECT_FALSE(rows_end_pages(2176, RowPlacement::kPacked));
  EXPECT_EQ(place_rows(0, 2176, RowPlacement::kPageEnds).pitch, 4096u);
  EXPECT_THROW(place_rows(-1, 2176, RowPlacement::kPageEnds), std::invalid_argument);
}

TEST(RowPlacement, NamesRoundTrip) {
  for (const RowPlacement p : {RowPlacement::kPacked, RowPlacement::kPageEnds, RowPlacement::kAuto})
    EXPECT_EQ(parse_row_placement(row_placement_name(p)), p);
  EXPECT_FALSE(parse_row_placement("page").has_value());
  EXPECT_FALSE(parse_row_placement("").has_value());
  EXPECT_EQ(sparse_row_placement(), RowPlacement::kAuto);  // the default
}

}  // namespace
}  // namespace ffn
