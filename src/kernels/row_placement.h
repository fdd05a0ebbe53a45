// Where re-laid weight rows that are read one by one, in scattered subsets,
// sit in memory: back to back, or, for rows of at most 4 KiB, one per page,
// each ending where its page ends; by default (auto) the second for rows of
// 2-4 KiB on Intel CPUs (where it was measured), the first elsewhere.
//
// Why page ends: one decoded token reads only the active rows of W^T
// (sparse_input_q8.h) or the kept neurons' row pairs (neuron_rows.h).
// The L2 streamer prefetcher of Intel cores follows each row as a stream and
// runs on past its end, into the next row, up to the end of the 4 KiB page
// it is in (it does not cross pages). When that next row is inactive those
// lines come from DRAM for nothing. A row that ends where its page ends
// gives the streamer nothing to overrun.
// Measured on an Intel Xeon with AMX, 2 threads (docs/BENCHMARKS.md,
// "Rows at page ends" and the section after it): the one-token VNNI
// input-sparse product on TinyLlama's Q8_0 shapes ran 1.16x (down^T,
// 2176-byte rows, 30% of rows) and 1.10x (q|k|v^T, 2720 bytes, 75%) as fast
// with rows at page ends (BM_SparseInputPlacement), and Q8_0 TEAL decode
// 1.73x of dense instead of 1.62x at 50%, 2.57x instead of 2.47x at 70%.
// Rows longer than a page gain nothing measurable (gate|up^T, 11968 bytes)
// and CATS's 4352-byte Q8_0 row pairs lost 5%, so they stay back to back.
//
// The price is memory: a row takes a whole page. For rows of 2-4 KiB that
// is at most twice their bytes (a 2176-byte Q8_0 row of 2048 outputs:
// +88%; TinyLlama Q8_0 TEAL +380 MiB, +18% of the process), which `auto`
// pays for the gain. Shorter rows would take up to 4x and more (a
// 1152-byte Q4_0 row: 3.6x; TinyLlama Q4_0 TEAL +600 MiB, +53%, for 2-6%
// faster decode): only `pages` places those.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string_view>

namespace ffn {

enum class RowPlacement {
  kPacked,    // row j at j * row bytes
  kPageEnds,  // rows of at most 4 KiB: row j ends page j; longer rows: packed
  kAuto,      // Intel CPUs: rows of 2-4 KiB as kPageEnds, the rest packed; others: kPacked
};

// The placement packing uses when the caller names none: kAuto unless
// set_sparse_row_placement chose otherwise (the CLI's --sparse-rows).
RowPlacement sparse_row_placement();
void set_sparse_row_placement(RowPlacement placement);

// "packed" / "pages" / "auto".
std::optional<RowPlacement> parse_row_placement(std::string_view name);
const char* row_placement_name(RowPlacement placement);

// Whether rows of row_bytes end a page each under `placement`.
bool rows_end_pages(uint64_t row_bytes, RowPlacement placement);

// Memory for n_rows rows of row_bytes each, placed as asked: `first` is row
// 0 (sharing ownership of the allocation), row j starts at first + j *
// pitch (row_bytes, or 4096 for rows at page ends). `placement` kAuto
// resolves here, by row_bytes. Allocated with
// packed_weight_buffer (huge pages where large).
struct PlacedRows {
  std::shared_ptr<uint8_t> first;
  uint64_t pitch = 0;
};
PlacedRows place_rows(int64_t n_rows, uint64_t row_bytes, RowPlacement placement);

}  // namespace ffn
