#include "transform/upcycle.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <memory>
#include <random>

#include "core/error.h"
#include "core/spec_text.h"
#include "ffn/gated_ffn.h"
#include "ffn/moe_ffn.h"
#include "kernels/convert.h"
#include "model/llama_model.h"
#include "model/moe_params.h"
#include "transform/new_tensors.h"

namespace ffn {

namespace {

std::string tensor_name(int64_t layer, const char* what) { return fmt::format("blk.{}.{}.weight", layer, what); }


bool is_layer_ffn_tensor(const std::string& name, const char* const* parts) {
  for (const char* const* p = parts; *p; ++p)
    if (name.find(*p) != std::string::npos) return true;
  return false;
}

// `copies` copies of w stacked, each perturbed by N(0, (noise * rms(w))^2)
// (noise 0: a byte copy).
std::shared_ptr<std::vector<uint8_t>> stacked_copies(const WeightMatrix& w, int64_t copies, double noise,
                                                     std::mt19937_64& rng) {
  const uint64_t bytes = w.bytes();
  auto out = std::make_shared<std::vector<uint8_t>>(bytes * uint64_t(copies));
  if (noise == 0.0) {
    for (int64_t e = 0; e < copies; ++e) std::copy_n(w.data, bytes, out->data() + uint64_t(e) * bytes);
    return out;
  }
  std::vector<float> row(size_t(w.cols));
  double sum_sq = 0;
  for (int64_t r = 0; r < w.rows; ++r) {
    read_row(w, r, row.data());
    for (float v : row) sum_sq += double(v) * v;
  }
  const double sigma = noise * std::sqrt(sum_sq / double(w.rows * w.cols));
  std::normal_distribution<double> normal(0.0, sigma);
  for (int64_t e = 0; e < copies; ++e)
    for (int64_t r = 0; r < w.rows; ++r) {
      read_row(w, r, row.data());
      for (float& v : row) v = float(v + normal(rng));
      encode_row(w.type, row.data(), out->data() + uint64_t(e) * bytes + uint64_t(r) * w.row_bytes(),
                 uint64_t(w.cols));
    }
  return out;
}

// Mean over the n_blocks row blocks of a stacked matrix, times `scale`
// (accumulated in double: copies of one matrix average back exactly).
std::vector<float> block_mean(const WeightMatrix& stacked, int64_t n_blocks, double scale) {
  const int64_t rows = stacked.rows / n_blocks, cols = stacked.cols;
  std::vector<double> sum(size_t(rows * cols), 0.0);
  std::vector<float> row(static_cast<size_t>(cols));
  for (int64_t b = 0; b < n_blocks; ++b)
    for (int64_t r = 0; r < rows; ++r) {
      read_row(stacked, b * rows + r, row.data());
      for (int64_t c = 0; c < cols; ++c) sum[size_t(r * cols + c)] += row[size_t(c)];
    }
  std::vector<float> mean(sum.size());
  for (size_t i = 0; i < sum.size(); ++i) mean[i] = float(sum[i] / double(n_blocks) * scale);
  return mean;
}



}  // namespace

UpcycleSpec parse_upcycle(const std::string& text, const std::string& what) {
  if (text.rfind("upcycle:", 0) != 0)
    fail(what, "value", "upcycle:experts=E,top_k=K[,noise=S][,seed=N] or upcycle:E/K", "\"" + text + "\"");
  const std::string body = text.substr(8);
  UpcycleSpec s;
  if (body.find('=') != std::string::npos) {
    for (const auto& kv : split_on(body, ',')) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos) fail(what, "\"" + kv + "\"", "key=value", "no '='");
      const std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
      if (k == "experts") s.experts = parse_int_field(v, what, k, 1, 65536);
      else if (k == "top_k") s.top_k = parse_int_field(v, what, k, 1, 65536);
      else if (k == "noise") s.noise = parse_number_field(v, what, k, 0.0, 10.0);
      else if (k == "seed") s.seed = uint64_t(parse_int_field(v, what, k, 0, INT64_MAX));
      else fail(what, "key \"" + k + "\"", "experts, top_k, noise or seed", "\"" + k + "\"");
    }
  } else {
    const auto parts = split_on(body, '/');
    if (parts.size() != 2) fail(what, "value", "upcycle:E/K", "\"" + text + "\"");
    s.experts = parse_int_field(parts[0], what, "experts", 1, 65536);
    s.top_k = parse_int_field(parts[1], what, "top_k", 1, 65536);
  }
  if (s.top_k > s.experts)
    fail(what, "top_k", fmt::format("1..{} (experts)", s.experts), std::to_string(s.top_k));
  return s;
}

ModelSource upcycle(const ModelSource& src, const LlamaModel& model, const UpcycleSpec& spec) {
  const auto& c = model.config();
  static const char* const kDense[] = {".ffn_gate.weight", ".ffn_up.weight", ".ffn_down.weight", nullptr};
  ModelSource out = src.without_tensors();
  for (const auto& t : src.tensors)
    if (!is_layer_ffn_tensor(t.name, kDense)) out.add(t);
  std::mt19937_64 rng(spec.seed);
  const int64_t E = spec.experts, d = c.dim;
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const auto* dense = dynamic_cast<const GatedFfn*>(model.layers()[size_t(l)].ffn.get());
    if (!dense) throw Error(fmt::format("upcycle: layer {} is not a dense gated FFN", l));
    const uint64_t U = uint64_t(E), H = uint64_t(dense->hidden()), D = uint64_t(d);
    std::normal_distribution<float> normal(0.0f, float(1.0 / std::sqrt(double(d))));
    std::vector<float> router(size_t(E * d));
    for (auto& v : router) v = normal(rng);
    add_owned_tensor(out, tensor_name(l, "ffn_gate_inp"), DType::F32, {U, D}, encode_matrix(router, E, d, DType::F32));
    add_owned_tensor(out, tensor_name(l, "ffn_gate_exps"), dense->gate().type, {U, H, D},
               stacked_copies(dense->gate(), E, spec.noise, rng));
    add_owned_tensor(out, tensor_name(l, "ffn_up_exps"), dense->up().type, {U, H, D},
               stacked_copies(dense->up(), E, spec.noise, rng));
    add_owned_tensor(out, tensor_name(l, "ffn_down_exps"), dense->down().type, {U, D, H},
               stacked_copies(dense->down(), E, spec.noise, rng));
  }
  MoeParams p;
  p.n_experts = E;
  p.expert_hidden = c.hidden_dim;
  p.routing.top_k = spec.top_k;
  p.routing.gating = MoeGating::Softmax;
  p.routing.renormalize = true;
  write_moe_params(out, p);
  return out;
}

ModelSource average_experts(const ModelSource& src, const LlamaModel& model) {
  const auto& c = model.config();
  static const char* const kMoe[] = {".ffn_gate_inp.",  ".ffn_gate_exps.", ".ffn_up_exps.",   ".ffn_down_exps.",
                                     ".ffn_gate_shexp.", ".ffn_up_shexp.",  ".ffn_down_shexp.", ".ffn_gate_inp_shexp.",
                                     ".ffn_gate_res.",   ".ffn_const_",     nullptr};
  ModelSource out = src.without_tensors();
  for (const auto& t : src.tensors)
    if (!is_layer_ffn_tensor(t.name, kMoe)) out.add(t);
  int64_t hidden = -1;
  for (int64_t l = 0; l < c.n_layers; ++l) {
    const auto* moe = dynamic_cast<const MoeFfn*>(model.layers()[size_t(l)].ffn.get());
    if (!moe) continue;  // a dense layer stays as it is
    const MoeWeights& w = moe->weights();
    if (w.n_zero + w.n_copy + w.n_const || !w.shared_gate.empty())
      throw Error(fmt::format("average: layer {} has MoE++ or gated shared experts, which do not average into one FFN", l));
    const MoeRouting& r = moe->routing();
    const double scale = r.gating == MoeGating::Unit ? double(r.top_k) : 1.0;
    const int64_t d = c.dim, he = w.expert_hidden, hs = w.shared ? w.shared->hidden() : 0, h = he + hs;
    std::vector<float> gate = block_mean(w.gate_exps, w.n_experts, 1.0);
    std::vector<float> up = block_mean(w.up_exps, w.n_experts, 1.0);
    const std::vector<float> down_mean = block_mean(w.down_exps, w.n_experts, scale);
    std::vector<float> down(size_t(d * h));
    for (int64_t o = 0; o < d; ++o)
      std::copy_n(&down_mean[size_t(o * he)], he, &down[size_t(o * h)]);
    if (w.shared) {
      const auto sg = decode_matrix(w.shared->gate()), su = decode_matrix(w.shared->up()),
                 sd = decode_matrix(w.shared->down());
      gate.insert(gate.end(), sg.begin(), sg.end());
      up.insert(up.end(), su.begin(), su.end());
      for (int64_t o = 0; o < d; ++o) std::copy_n(&sd[size_t(o * hs)], hs, &down[size_t(o * h + he)]);
    }
    if (hidden >= 0 && hidden != h)
      throw Error(fmt::format("average: layer {} would get {} neurons, earlier layers {}", l, h, hidden));
    hidden = h;
    const DType gt = dtype_row_ok(w.gate_exps.type, uint64_t(d)) ? w.gate_exps.type : DType::F16;
    const DType dt = dtype_row_ok(w.down_exps.type, uint64_t(h)) ? w.down_exps.type : DType::F16;
    const uint64_t H = uint64_t(h), D = uint64_t(d);
    add_owned_tensor(out, tensor_name(l, "ffn_gate"), gt, {H, D}, encode_matrix(gate, h, d, gt));
    add_owned_tensor(out, tensor_name(l, "ffn_up"), gt, {H, D}, encode_matrix(up, h, d, gt));
    add_owned_tensor(out, tensor_name(l, "ffn_down"), dt, {D, H}, encode_matrix(down, d, h, dt));
  }
  if (hidden < 0) throw Error("average: the model has no mixture-of-experts layer");
  for (const auto& L : model.layers())
    if (!dynamic_cast<const MoeFfn*>(L.ffn.get()) && uint64_t(hidden) != out.params.hidden_dim)
      throw Error("average: the dense layers' width differs from the averaged layers'; one feed_forward_length "
                  "cannot describe both");
  out.params.hidden_dim = uint64_t(hidden);
  erase_moe_params(out);
  return out;
}

}  // namespace ffn
