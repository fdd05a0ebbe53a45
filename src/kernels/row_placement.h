// Where re-laid weight rows that are read one by one, in scattered subsets,
// sit in memory: back to back (the default), or, for rows of at most 4 KiB,
// one per page, each ending where its page ends.
//
// Why the second exists: one decoded token reads only the active rows of
// W^T (sparse_input_q8.h) or the kept neurons' row pairs (neuron_rows.h).
// The L2 streamer prefetcher of Intel cores follows each row as a stream and
// runs on past its end, into the next row, up to the end of the 4 KiB page
// it is in (it does not cross pages). When that next row is inactive those
// lines come from DRAM for nothing. A row that ends where its page ends
// gives the streamer nothing to overrun.
// Measured on an Intel Xeon with AMX, 2 threads (docs/BENCHMARKS.md,
// "Rows at page ends"): the one-token VNNI input-sparse product on
// TinyLlama's Q8_0 shapes ran 1.16x (down^T, 2176-byte rows, 30% of rows)
// and 1.10x (q|k|v^T, 2720 bytes, 75%) as fast with rows at page ends
// (BM_SparseInputPlacement), and TEAL decode 1.68x of dense instead of
// 1.58x at 50%, 2.53x instead of 2.34x at 70%. Rows longer than a page gain
// nothing measurable (gate|up^T, 11968 bytes) and CATS's 4352-byte Q8_0 row
// pairs lost 5%, so they stay back to back.
//
// The price is memory: a row of 2-4 KiB takes a whole page (a 2176-byte
// Q8_0 row of 2048 outputs: +88%; a 1152-byte Q4_0 row: 3.6x), so it is a
// choice the user makes (`--sparse-rows pages`), never the default.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

namespace ffn {

enum class RowPlacement {
  kPacked,    // row j at j * row bytes
  kPageEnds,  // rows of at most 4 KiB: row j ends page j; longer rows: packed
};

// The placement packing uses when the caller names none: kPacked unless
// set_sparse_row_placement chose otherwise (the CLI's --sparse-rows).
RowPlacement sparse_row_placement();
void set_sparse_row_placement(RowPlacement placement);

// "packed" / "pages".
std::optional<RowPlacement> parse_row_placement(std::string_view name);
const char* row_placement_name(RowPlacement placement);

// Memory for n_rows rows of row_bytes each, placed as asked: `first` is row
// 0 (sharing ownership of the allocation), row j starts at first + j *
// pitch (row_bytes, or 4096 for rows at page ends). Allocated with
// packed_weight_buffer (huge pages where large).
struct PlacedRows {
  std::shared_ptr<uint8_t> first;
  uint64_t pitch = 0;
};
PlacedRows place_rows(int64_t n_rows, uint64_t row_bytes, RowPlacement placement);

}  // namespace ffn
