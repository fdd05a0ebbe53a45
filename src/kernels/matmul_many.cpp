// matmul_many (kernels/weight_matrix.h): several products, one pool pass.
#include <algorithm>
#include <vector>

#include "core/stream_split.h"
#include "core/thread_pool.h"
#include "kernels/matmul.h"
#include "kernels/matmul_quant.h"
#include "kernels/packed_bf16.h"
#include "kernels/packed_quant.h"
#include "kernels/weight_matrix.h"

namespace ffn {

namespace {

bool is_quant(DType t) { return t == DType::Q8_0 || t == DType::Q4_0; }

// The form of the activations a weight's kernel reads: fp32 as given, int8
// blocks (Q8_0/Q4_0 on the VNNI kernels or packed tiles) or bf16 (packed
// BF16).
enum class ActivationForm { Fp32, Int8, Bf16 };
ActivationForm form_for(const WeightMatrix& w, bool vnni) {
  if (is_quant(w.type) && (vnni || w.packed)) return ActivationForm::Int8;
  if (w.type == DType::BF16 && w.packed) return ActivationForm::Bf16;
  return ActivationForm::Fp32;
}

// Below this many multiply-adds in total the jobs run on the calling thread
// (as matmul does for one product).
constexpr int64_t kMinParallelMacs = 64 * 1024;

// The unit of work a thread claims: small enough that the threads finish a
// pass within ~2 us of each other, large enough that claims cost nothing.
constexpr uint64_t kChunkBytes = 64 * 1024;

// The caller's buffers of quantized activations, one per job, reused.
std::vector<QuantizedActivations>& caller_activations() {
  thread_local std::vector<QuantizedActivations> buffers;
  return buffers;
}

std::vector<int64_t>& caller_activation_owner() {
  thread_local std::vector<int64_t> owner;
  return owner;
}

StreamSplit& caller_split() {
  thread_local StreamSplit split;
  return split;
}

std::vector<uint64_t>& caller_byte_offsets() {
  thread_local std::vector<uint64_t> offsets;
  return offsets;
}

}  // namespace

void matmul_many(const MatmulJob* jobs, int64_t count, int64_t n_tok, ThreadPool& pool) {
  if (count <= 0) return;
  const bool vnni = cpu_has_vnni();
  std::vector<QuantizedActivations>& acts = caller_activations();
  if (int64_t(acts.size()) < count) acts.resize(size_t(count));
  // Cumulative weight bytes, in the caller's buffer reused across calls
  // (this runs for every layer of every decoded token). Named through a
  // reference: inside the workers' lambda a thread_local name would mean
  // each worker's own, empty, vector.
  std::vector<uint64_t>& start = caller_byte_offsets();
  start.assign(size_t(count + 1), 0);
  // Jobs that share their input (q/k/v, gate/up, every expert's gate/up)
  // share its converted form: act_of[j] is the job whose buffer j reads.
  std::vector<int64_t>& act_of = caller_activation_owner();
  act_of.assign(size_t(count), 0);
  int64_t macs = 0;
  for (int64_t j = 0; j < count; ++j) {
    const WeightMatrix& w = *jobs[j].w;
    act_of[size_t(j)] = j;
    const ActivationForm form = form_for(w, vnni);
    if (form != ActivationForm::Fp32) {
      int64_t same = -1;
      for (int64_t i = 0; i < j && same < 0; ++i)
        if (act_of[size_t(i)] == i && jobs[i].x == jobs[j].x && jobs[i].w->cols == w.cols &&
            form_for(*jobs[i].w, vnni) == form)
          same = i;
      if (same >= 0) {
        act_of[size_t(j)] = same;
      } else if (form == ActivationForm::Int8) {
        acts[size_t(j)].quantize(jobs[j].x, n_tok, w.cols);
      } else {
        acts[size_t(j)].bf16.resize(static_cast<size_t>(n_tok * w.cols));
        round_to_bf16(jobs[j].x, n_tok * w.cols, acts[size_t(j)].bf16.data());
      }
    }
    start[size_t(j + 1)] = start[size_t(j)] + w.bytes();
    macs += n_tok * w.rows * w.cols;
  }
  auto rows = [&](int64_t j, int64_t r0, int64_t r1) {
    if (r0 >= r1) return;
    const MatmulJob& job = jobs[j];
    const WeightMatrix& w = *job.w;
    if (w.packed && w.type == DType::F16)
      matmul_packed_f16_rows(w, job.x, n_tok, job.y, w.rows, r0, r1);
    else if (w.packed)
      matmul_packed_rows(w, acts[size_t(act_of[size_t(j)])], n_tok, job.y, w.rows, r0, r1);
    else if (is_quant(w.type))
      matmul_quant_rows(w.type, vnni ? &acts[size_t(act_of[size_t(j)])] : nullptr, job.x, n_tok, w.cols, w.data,
                        job.y, w.rows, r0, r1);
    else
      matmul_dense_rows(w.type, job.x, n_tok, w.cols, w.data, job.y, w.rows, r0, r1);
  };
  if (macs < kMinParallelMacs || pool.size() == 1) {
    for (int64_t j = 0; j < count; ++j) rows(j, 0, jobs[j].w->rows);
    return;
  }
  // The jobs' bytes laid end to end are cut into 64 KiB pieces. Each thread
  // streams its own run of consecutive pieces and then takes pieces from
  // the back of the others' (StreamSplit, core/stream_split.h): one memory
  // stream per thread per pass, and the threads still finish together.
  //
  // Piece p covers bytes [p * B / pieces, (p + 1) * B / pieces); within job
  // j that is rows from boundary(j, p) to boundary(j, p + 1), rounded to
  // whole tiles (4 rows, or kPackRows for packed weights). Adjacent pieces
  // use the same boundary, so every row is computed exactly once (a piece
  // smaller than a tile may get no rows).
  const uint64_t total = start[size_t(count)];
  const int64_t threads = pool.size();
  const int64_t pieces = std::clamp<int64_t>(int64_t(total / kChunkBytes), threads, int64_t(0xffffffff));
  auto boundary = [&](int64_t j, int64_t p) -> int64_t {
    const WeightMatrix& w = *jobs[j].w;
    const uint64_t at = uint64_t((unsigned __int128)total * uint64_t(p) / uint64_t(pieces));
    if (at <= start[size_t(j)]) return 0;
    if (at >= start[size_t(j + 1)]) return w.rows;
    const int64_t r = int64_t((at - start[size_t(j)]) / w.row_bytes());
    const int64_t tile = w.packed ? kPackRows : 4;
    return std::min(w.rows, (r + tile - 1) / tile * tile);
  };
  StreamSplit& split = caller_split();
  split.reset(pieces, int(threads));
  pool.parallel_for(threads, [&](int64_t, int64_t, int thread) {
    for (int64_t p = split.next(thread); p >= 0; p = split.next(thread))
      for (int64_t j = 0; j < count; ++j) rows(j, boundary(j, p), boundary(j, p + 1));
  });
}

}  // namespace ffn
