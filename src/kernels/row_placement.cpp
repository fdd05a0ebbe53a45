#include "kernels/row_placement.h"

#include <atomic>
#include <stdexcept>

#include "core/cpu_vendor.h"
#include "kernels/packed_quant.h"

namespace ffn {

namespace {
constexpr uint64_t kPage = 4096;
std::atomic<int> chosen{int(RowPlacement::kAuto)};
}  // namespace

RowPlacement sparse_row_placement() { return RowPlacement(chosen.load(std::memory_order_relaxed)); }

void set_sparse_row_placement(RowPlacement placement) { chosen.store(int(placement), std::memory_order_relaxed); }

std::optional<RowPlacement> parse_row_placement(std::string_view name) {
  if (name == "packed") return RowPlacement::kPacked;
  if (name == "pages") return RowPlacement::kPageEnds;
  if (name == "auto") return RowPlacement::kAuto;
  return std::nullopt;
}

const char* row_placement_name(RowPlacement placement) {
  switch (placement) {
    case RowPlacement::kPacked: return "packed";
    case RowPlacement::kPageEnds: return "pages";
    case RowPlacement::kAuto: return "auto";
  }
  return "?";
}

bool rows_end_pages(uint64_t row_bytes, RowPlacement placement) {
  if (row_bytes > kPage) return false;
  return placement == RowPlacement::kPageEnds ||
         (placement == RowPlacement::kAuto && row_bytes >= kPage / 2 && cpu_is_intel());
}

PlacedRows place_rows(int64_t n_rows, uint64_t row_bytes, RowPlacement placement) {
  if (n_rows < 0) throw std::invalid_argument("place_rows: negative row count");
  if (!rows_end_pages(row_bytes, placement)) return {packed_weight_buffer(uint64_t(n_rows) * row_bytes), row_bytes};
  const uint64_t pitch = kPage;
  // packed_weight_buffer aligns to 64 bytes: one page more lets the rows
  // start on a page boundary wherever the buffer lands.
  std::shared_ptr<uint8_t> buf = packed_weight_buffer(uint64_t(n_rows) * pitch + kPage);
  const uintptr_t start = (reinterpret_cast<uintptr_t>(buf.get()) + kPage - 1) / kPage * kPage;
  uint8_t* first = reinterpret_cast<uint8_t*>(start) + (pitch - row_bytes);
  return {std::shared_ptr<uint8_t>(std::move(buf), first), pitch};
}

}  // namespace ffn
