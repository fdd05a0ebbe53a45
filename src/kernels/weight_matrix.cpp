#include "kernels/weight_matrix.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <vector>

#include "core/mapped_file.h"
#include "core/thread_pool.h"
#include "kernels/convert.h"
#include "kernels/matmul.h"
#include "kernels/matmul_quant.h"
#include "kernels/packed_quant.h"

namespace ffn {

void matmul(const WeightMatrix& w, const float* x, int64_t n_tok, float* y, ThreadPool& pool) {
  const MatmulJob job{&w, x, y};
  matmul_many(&job, 1, n_tok, pool);
}

void read_row(const WeightMatrix& w, int64_t r, float* out) {
  dequantize_row(w.type, w.row(r), out, uint64_t(w.cols));
}

void transposed_columns(const WeightMatrix& w, int64_t c0, int64_t n, float* out) {
  // Decode kBlock rows of the columns at a time into a small tile, then
  // transpose the tile into the n output rows (runs of kBlock consecutive
  // floats each). (Scattering each decoded slice straight into the rows
  // wrote one float per cache line across a buffer larger than L2.)
  constexpr int64_t kBlock = 64;
  thread_local std::vector<float> tile;
  tile.resize(static_cast<size_t>(kBlock * n));
  const uint64_t offset = dtype_row_bytes(w.type, uint64_t(c0));
  for (int64_t r0 = 0; r0 < w.rows; r0 += kBlock) {
    const int64_t m = std::min(kBlock, w.rows - r0);
    for (int64_t i = 0; i < m; ++i) dequantize_row(w.type, w.row(r0 + i) + offset, tile.data() + i * n, uint64_t(n));
    for (int64_t j = 0; j < n; ++j) {
      float* row = out + j * w.rows + r0;
      for (int64_t i = 0; i < m; ++i) row[i] = tile[size_t(i * n + j)];
    }
  }
}

WeightMatrix transposed(const WeightMatrix& w, ThreadPool* pool) {
  WeightMatrix t;
  t.type = dtype_row_ok(w.type, uint64_t(w.rows)) ? w.type : DType::F16;
  t.rows = w.cols;
  t.cols = w.rows;
  // Its own allocation in huge pages: input-sparse products read its rows
  // in scattered order, and a TLB miss per row (4 KiB pages) cost BF16
  // W^T ~2.4x the time of the same bytes gathered elsewhere (perf, CATS
  // decode; docs/BENCHMARKS.md).
  const std::shared_ptr<uint8_t> buf = weight_allocation(t.bytes());
  t.data = buf.get();
  t.owned = buf;
  // A panel of kTransposePanel columns of W becomes as many rows of W^T.
  const int64_t n_panels = (w.cols + kTransposePanel - 1) / kTransposePanel;
  auto panels = [&](int64_t p0, int64_t p1) {
    std::vector<float> rows(static_cast<size_t>(kTransposePanel * w.rows));
    for (int64_t p = p0; p < p1; ++p) {
      const int64_t c0 = p * kTransposePanel, n = std::min(kTransposePanel, w.cols - c0);
      transposed_columns(w, c0, n, rows.data());
      for (int64_t j = 0; j < n; ++j)
        encode_row(t.type, rows.data() + j * w.rows, buf.get() + uint64_t(c0 + j) * t.row_bytes(), uint64_t(w.rows));
    }
  };
  if (pool) pool->parallel_for(n_panels, [&](int64_t b, int64_t e, int) { panels(b, e); });
  else panels(0, n_panels);
  return t;
}

WeightMatrix with_own_rows(WeightMatrix w) {
  if (w.owned || w.data == nullptr) return w;
  const std::shared_ptr<uint8_t> buf = weight_allocation(w.bytes());
  std::memcpy(buf.get(), w.data, w.bytes());
  release_mapped_pages(w.data, w.bytes());
  w.data = buf.get();
  w.owned = buf;
  return w;
}

WeightMatrix concat_columns(std::initializer_list<const WeightMatrix*> parts) {
  if (parts.size() == 0) throw std::invalid_argument("concat_columns: no parts");
  const WeightMatrix& first = **parts.begin();
  bool bytes_join = true;
  WeightMatrix c{.type = first.type, .rows = first.rows, .cols = 0};
  for (const WeightMatrix* p : parts) {
    if (p->rows != c.rows || p->data == nullptr) throw std::invalid_argument("concat_columns: parts differ in rows");
    bytes_join = bytes_join && p->type == c.type && dtype_row_ok(p->type, uint64_t(p->cols));
    c.cols += p->cols;
  }
  if (!bytes_join) c.type = DType::F32;
  const std::shared_ptr<uint8_t> buf = weight_allocation(c.bytes());  // huge pages, as transposed()
  for (int64_t r = 0; r < c.rows; ++r) {
    uint8_t* out = buf.get() + uint64_t(r) * c.row_bytes();
    for (const WeightMatrix* p : parts) {
      if (bytes_join) {
        std::memcpy(out, p->row(r), p->row_bytes());
        out += p->row_bytes();
      } else {
        dequantize_row(p->type, p->row(r), reinterpret_cast<float*>(out), uint64_t(p->cols));
        out += uint64_t(p->cols) * sizeof(float);
      }
    }
  }
  c.data = buf.get();
  c.owned = std::move(buf);
  return c;
}

}  // namespace ffn
