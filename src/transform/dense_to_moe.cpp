#include "transform/dense_to_moe.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <memory>
#include <numeric>
#include <random>

#include "core/error.h"
#include "core/spec_text.h"
#include "core/thread_pool.h"
#include "ffn/gated_ffn.h"
#include "kernels/convert.h"
#include "kernels/matmul.h"
#include "model/llama_model.h"
#include "model/moe_params.h"
#include "transform/new_tensors.h"
#include "transform/ffn_activations.h"

namespace ffn {

namespace {

ExpertSplit parse_split(const std::string& v, const std::string& what) {
  if (v == "cluster") return ExpertSplit::Cluster;
  if (v == "coact") return ExpertSplit::Coact;
  if (v == "taylor") return ExpertSplit::Taylor;
  fail(what, "split", "cluster, coact or taylor", "\"" + v + "\"");
}

// Unit rows (zero rows stay zero).
void normalize_rows(std::vector<float>& f, int64_t n, int64_t dim) {
  for (int64_t i = 0; i < n; ++i) {
    float* r = f.data() + i * dim;
    double s = 0;
    for (int64_t j = 0; j < dim; ++j) s += double(r[j]) * r[j];
    if (s > 0)
      for (int64_t j = 0; j < dim; ++j) r[j] = float(r[j] / std::sqrt(s));
  }
}


// Solves (A + lambda I) X = B for symmetric positive semi-definite A [n, n]
// and B [n, m] by Cholesky, in double. Returns X [n, m].
std::vector<double> ridge_solve(std::vector<double> A, const std::vector<double>& B, int64_t n, int64_t m) {
  double trace = 0;
  for (int64_t i = 0; i < n; ++i) trace += A[size_t(i * n + i)];
  const double lambda = 1e-3 * trace / double(n) + 1e-9;
  for (int64_t i = 0; i < n; ++i) A[size_t(i * n + i)] += lambda;
  // A = L L^T, L stored in the lower triangle of A.
  for (int64_t j = 0; j < n; ++j) {
    double d = A[size_t(j * n + j)];
    for (int64_t k = 0; k < j; ++k) d -= A[size_t(j * n + k)] * A[size_t(j * n + k)];
    d = std::sqrt(std::max(d, 1e-300));
    A[size_t(j * n + j)] = d;
    for (int64_t i = j + 1; i < n; ++i) {
      double s = A[size_t(i * n + j)];
      for (int64_t k = 0; k < j; ++k) s -= A[size_t(i * n + k)] * A[size_t(j * n + k)];
      A[size_t(i * n + j)] = s / d;
    }
  }
  std::vector<double> X(B);
  for (int64_t c = 0; c < m; ++c) {
    for (int64_t i = 0; i < n; ++i) {  // L y = b
      double s = X[size_t(i * m + c)];
      for (int64_t k = 0; k < i; ++k) s -= A[size_t(i * n + k)] * X[size_t(k * m + c)];
      X[size_t(i * m + c)] = s / A[size_t(i * n + i)];
    }
    for (int64_t i = n - 1; i >= 0; --i) {  // L^T x = y
      double s = X[size_t(i * m + c)];
      for (int64_t k = i + 1; k < n; ++k) s -= A[size_t(k * n + i)] * X[size_t(k * m + c)];
      X[size_t(i * m + c)] = s / A[size_t(i * n + i)];
    }
  }
  return X;
}

// The router [groups, d] fitted by ridge regression of each group's
// activation mass on the FFN input (see the header).
std::vector<float> fit_router(const std::vector<float>& x, const std::vector<float>& h, int64_t T, int64_t d,
                              int64_t hidden, const std::vector<std::vector<int32_t>>& groups, ThreadPool& pool) {
  const int64_t G = int64_t(groups.size());
  std::vector<float> xt(size_t(d * T)), mass_t(size_t(G * T), 0.0f);  // transposed: one row per feature
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t i = 0; i < d; ++i) xt[size_t(i * T + t)] = x[size_t(t * d + i)];
    for (int64_t g = 0; g < G; ++g) {
      float s = 0;
      for (int32_t neuron : groups[size_t(g)]) s += std::abs(h[size_t(t * hidden + neuron)]);
      mass_t[size_t(g * T + t)] = s;
    }
  }
  std::vector<double> A(size_t(d * d)), B(size_t(d * G));
  pool.parallel_for(d, [&](int64_t i0, int64_t i1, int) {
    for (int64_t i = i0; i < i1; ++i) {
      for (int64_t j = 0; j <= i; ++j) A[size_t(i * d + j)] = dot_f32(&xt[size_t(i * T)], &xt[size_t(j * T)], T);
      for (int64_t g = 0; g < G; ++g) B[size_t(i * G + g)] = dot_f32(&xt[size_t(i * T)], &mass_t[size_t(g * T)], T);
    }
  });
  for (int64_t i = 0; i < d; ++i)
    for (int64_t j = i + 1; j < d; ++j) A[size_t(i * d + j)] = A[size_t(j * d + i)];
  const auto W = ridge_solve(std::move(A), B, d, G);  // [d, G]
  std::vector<float> router(size_t(G * d));
  for (int64_t g = 0; g < G; ++g)
    for (int64_t i = 0; i < d; ++i) router[size_t(g * d + i)] = float(W[size_t(i * G + g)]);
  return router;
}

// tau of the zero experts (see the header): the median over tokens of the
// k-th largest predicted group mass.
float zero_expert_logit(const std::vector<float>& router, const std::vector<float>& x, int64_t T, int64_t d,
                        int64_t groups, int64_t k) {
  std::vector<float> kth(static_cast<size_t>(T)), pred(static_cast<size_t>(groups));
  for (int64_t t = 0; t < T; ++t) {
    for (int64_t g = 0; g < groups; ++g) pred[size_t(g)] = dot_f32(&router[size_t(g * d)], &x[size_t(t * d)], d);
    std::nth_element(pred.begin(), pred.begin() + (k - 1), pred.end(), std::greater<float>());
    kth[size_t(t)] = pred[size_t(k - 1)];
  }
  std::nth_element(kth.begin(), kth.begin() + T / 2, kth.end());
  return kth[size_t(T / 2)];
}


// Rows `neurons` of w (-1: a zero row), re-using the stored bytes.
std::shared_ptr<std::vector<uint8_t>> gather_rows(const WeightMatrix& w, const std::vector<int32_t>& neurons) {
  const uint64_t rb = w.row_bytes();
  auto out = std::make_shared<std::vector<uint8_t>>(rb * neurons.size());
  std::vector<uint8_t> zero(rb);
  std::vector<float> zeros(size_t(w.cols), 0.0f);
  encode_row(w.type, zeros.data(), zero.data(), uint64_t(w.cols));
  for (size_t i = 0; i < neurons.size(); ++i)
    std::copy_n(neurons[i] >= 0 ? w.row(neurons[i]) : zero.data(), rb, out->data() + i * rb);
  return out;
}

// Columns `neurons` of the decoded down projection [d, hidden] (-1: zero),
// one output row of `neurons.size()` per block of `width` neurons: the
// stacked [blocks, d, width] layout, encoded as `type`.
std::shared_ptr<std::vector<uint8_t>> gather_columns(const std::vector<float>& down, int64_t d, int64_t hidden,
                                                     const std::vector<int32_t>& neurons, int64_t width, DType type) {
  const int64_t blocks = int64_t(neurons.size()) / width;
  const uint64_t rb = dtype_row_bytes(type, uint64_t(width));
  auto out = std::make_shared<std::vector<uint8_t>>(rb * uint64_t(blocks * d));
  std::vector<float> row(static_cast<size_t>(width));
  for (int64_t b = 0; b < blocks; ++b)
    for (int64_t o = 0; o < d; ++o) {
      for (int64_t j = 0; j < width; ++j) {
        const int32_t n = neurons[size_t(b * width + j)];
        row[size_t(j)] = n >= 0 ? down[size_t(o * hidden + n)] : 0.0f;
      }
      encode_row(type, row.data(), out->data() + uint64_t(b * d + o) * rb, uint64_t(width));
    }
  return out;
}

}  // namespace

const char* expert_split_name(ExpertSplit s) {
  switch (s) {
    case ExpertSplit::Cluster: return "cluster";
    case ExpertSplit::Coact: return "coact";
    case ExpertSplit::Taylor: return "taylor";
  }
  return "?";
}

MoeConversionSpec parse_moe_conversion(const std::string& text, const std::string& what) {
  if (text.rfind("moe:", 0) != 0)
    fail(what, "value",
         "moe:experts=E,top_k=K[,shared=S][,split=cluster|coact|taylor][,zero=Z] or moe:E/K[/split][/sS][/zZ]",
         "\"" + text + "\"");
  MoeConversionSpec s;
  s.text = text;
  const std::string body = text.substr(4);
  bool have_experts = false, have_k = false;
  if (body.find('=') != std::string::npos) {
    for (const auto& kv : split_on(body, ',')) {
      const auto eq = kv.find('=');
      if (eq == std::string::npos) fail(what, "\"" + kv + "\"", "key=value", "no '='");
      const std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
      if (k == "experts") s.experts = parse_int_field(v, what, "experts", 0, 65536), have_experts = true;
      else if (k == "top_k") s.top_k = parse_int_field(v, what, "top_k", 0, 65536), have_k = true;
      else if (k == "shared") s.shared = parse_int_field(v, what, "shared", 0, 65536);
      else if (k == "split") s.split = parse_split(v, what);
      else if (k == "zero") s.zero = parse_int_field(v, what, "zero", 0, 65536);
      else fail(what, "key \"" + k + "\"", "experts, top_k, shared, split or zero", "\"" + k + "\"");
    }
  } else {
    const auto parts = split_on(body, '/');
    if (parts.size() < 2) fail(what, "value", "moe:E/K[/split][/sS][/zZ]", "\"" + text + "\"");
    s.experts = parse_int_field(parts[0], what, "experts", 0, 65536);
    s.top_k = parse_int_field(parts[1], what, "top_k", 0, 65536);
    have_experts = have_k = true;
    for (size_t i = 2; i < parts.size(); ++i) {
      const bool counted = parts[i].size() > 1 && std::isdigit(uint8_t(parts[i][1]));
      if (counted && parts[i][0] == 's')
        s.shared = parse_int_field(parts[i].substr(1), what, "shared", 0, 65536);
      else if (counted && parts[i][0] == 'z')
        s.zero = parse_int_field(parts[i].substr(1), what, "zero", 0, 65536);
      else
        s.split = parse_split(parts[i], what);
    }
  }
  if (!have_experts || !have_k) fail(what, have_experts ? "top_k" : "experts", "a value", "none");
  if (s.experts < 1) fail(what, "experts", "at least 1", std::to_string(s.experts));
  if (s.shared >= s.experts)
    fail(what, "shared", fmt::format("fewer than experts ({})", s.experts), std::to_string(s.shared));
  if (s.top_k < 1 || s.top_k > s.experts - s.shared + s.zero)
    fail(what, "top_k", fmt::format("1..{} (experts - shared + zero)", s.experts - s.shared + s.zero),
         std::to_string(s.top_k));
  return s;
}

std::vector<int32_t> balanced_kmeans(const std::vector<float>& features, int64_t n, int64_t dim, int64_t k,
                                     int64_t capacity, int iterations, uint64_t seed, ThreadPool& pool) {
  if (k * capacity < n || k < 1) throw Error("balanced_kmeans: k * capacity < n");
  std::mt19937_64 rng(seed);
  // k-means++ seeding on cosine distance.
  std::vector<float> centroids(size_t(k * dim));
  std::vector<double> best(static_cast<size_t>(n), 2.0);
  int64_t pick = int64_t(rng() % uint64_t(n));
  for (int64_t c = 0; c < k; ++c) {
    std::copy_n(&features[size_t(pick * dim)], dim, &centroids[size_t(c * dim)]);
    double total = 0;
    for (int64_t i = 0; i < n; ++i) {
      const double dist = 1.0 - dot_f32(&features[size_t(i * dim)], &centroids[size_t(c * dim)], dim);
      best[size_t(i)] = std::min(best[size_t(i)], std::max(dist, 0.0));
      total += best[size_t(i)] * best[size_t(i)];
    }
    double r = std::uniform_real_distribution<double>(0.0, total)(rng);
    pick = n - 1;
    for (int64_t i = 0; i < n; ++i)
      if ((r -= best[size_t(i)] * best[size_t(i)]) <= 0) { pick = i; break; }
  }
  std::vector<int32_t> assign(static_cast<size_t>(n), -1);
  std::vector<float> sims(size_t(n * k));
  std::vector<int64_t> order(size_t(n * k));
  const WeightMatrix cw{.type = DType::F32, .rows = k, .cols = dim};
  for (int it = 0; it < iterations; ++it) {
    WeightMatrix c = cw;
    c.data = reinterpret_cast<const uint8_t*>(centroids.data());
    matmul(c, features.data(), n, sims.data(), pool);  // sims[i, c] = <f_i, centroid_c>
    std::iota(order.begin(), order.end(), 0);
    std::sort(order.begin(), order.end(), [&](int64_t a, int64_t b) { return sims[size_t(a)] > sims[size_t(b)] || (sims[size_t(a)] == sims[size_t(b)] && a < b); });
    std::fill(assign.begin(), assign.end(), -1);
    std::vector<int64_t> load(static_cast<size_t>(k), 0);
    int64_t placed = 0;
    for (int64_t p : order) {
      const int64_t i = p / k, g = p % k;
      if (assign[size_t(i)] >= 0 || load[size_t(g)] >= capacity) continue;
      assign[size_t(i)] = int32_t(g);
      ++load[size_t(g)];
      if (++placed == n) break;
    }
    std::vector<double> sum(size_t(k * dim), 0.0);
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < dim; ++j) sum[size_t(assign[size_t(i)] * dim + j)] += features[size_t(i * dim + j)];
    for (int64_t g = 0; g < k; ++g) {
      double norm = 0;
      for (int64_t j = 0; j < dim; ++j) norm += sum[size_t(g * dim + j)] * sum[size_t(g * dim + j)];
      if (norm <= 0) continue;  // an empty group keeps its centroid
      for (int64_t j = 0; j < dim; ++j) centroids[size_t(g * dim + j)] = float(sum[size_t(g * dim + j)] / std::sqrt(norm));
    }
  }
  return assign;
}

ModelSource dense_to_moe(const ModelSource& src, const LlamaModel& model, const FfnActivations& acts,
                         const MoeConversionSpec& spec, ThreadPool& pool) {
  const auto& c = model.config();
  const int64_t d = c.dim, H = c.hidden_dim, E = spec.experts, T = acts.tokens;
  const int64_t width = (H + E - 1) / E;  // neurons per expert
  const int64_t routed = E - spec.shared;
  if (T < 1) throw Error("dense -> MoE: no calibration tokens");
  if (acts.d_model != d || acts.hidden != H || int64_t(acts.h.size()) != c.n_layers)
    throw Error("dense -> MoE: calibration activations do not match the model");

  ModelSource out = src.without_tensors();
  auto is_dense_ffn = [](const std::string& name) {
    for (const char* what : {".ffn_gate.weight", ".ffn_up.weight", ".ffn_down.weight"})
      if (name.find(what) != std::string::npos) return true;
    return false;
  };
  for (const auto& t : src.tensors)
    if (!is_dense_ffn(t.name)) out.add(t);

  for (int64_t l = 0; l < c.n_layers; ++l) {
    const auto* dense = dynamic_cast<const GatedFfn*>(model.layers()[size_t(l)].ffn.get());
    if (!dense) throw Error(fmt::format("dense -> MoE: layer {} is not a dense gated FFN", l));
    const std::vector<float>& x = acts.x[size_t(l)];
    const std::vector<float>& h = acts.h[size_t(l)];
    const std::vector<float> down = decode_matrix(dense->down());

    // Taylor importance of each neuron (see the header).
    std::vector<double> importance(static_cast<size_t>(H), 0.0);
    for (int64_t t = 0; t < T; ++t)
      for (int64_t i = 0; i < H; ++i) importance[size_t(i)] += std::abs(h[size_t(t * H + i)]);
    for (int64_t i = 0; i < H; ++i) {
      double norm = 0;
      for (int64_t o = 0; o < d; ++o) norm += double(down[size_t(o * H + i)]) * down[size_t(o * H + i)];
      importance[size_t(i)] *= std::sqrt(norm) / double(T);
    }

    std::vector<int32_t> group(static_cast<size_t>(H));
    if (spec.split == ExpertSplit::Taylor) {
      std::vector<int32_t> rank(static_cast<size_t>(H));
      std::iota(rank.begin(), rank.end(), 0);
      std::stable_sort(rank.begin(), rank.end(),
                       [&](int32_t a, int32_t b) { return importance[size_t(a)] > importance[size_t(b)]; });
      for (int64_t r = 0; r < H; ++r) group[size_t(rank[size_t(r)])] = int32_t(r / width);
    } else {
      int64_t dim = 0;
      std::vector<float> features;
      if (spec.split == ExpertSplit::Cluster) {
        dim = 2 * d;
        features.resize(size_t(H * dim));
        for (int64_t i = 0; i < H; ++i) {
          read_row(dense->gate(), i, &features[size_t(i * dim)]);
          read_row(dense->up(), i, &features[size_t(i * dim + d)]);
        }
      } else {
        dim = std::min<int64_t>(T, 2048);
        features.resize(size_t(H * dim));
        for (int64_t t = 0; t < dim; ++t)
          for (int64_t i = 0; i < H; ++i) features[size_t(i * dim + t)] = std::abs(h[size_t(t * H + i)]);
      }
      normalize_rows(features, H, dim);
      group = balanced_kmeans(features, H, dim, E, width, 10, 0x5eed + uint64_t(l), pool);
    }

    // Groups' members (ascending neuron order), then shared = most important.
    std::vector<std::vector<int32_t>> members(static_cast<size_t>(E));
    std::vector<double> group_importance(static_cast<size_t>(E), 0.0);
    for (int64_t i = 0; i < H; ++i) {
      members[size_t(group[size_t(i)])].push_back(int32_t(i));
      group_importance[size_t(group[size_t(i)])] += importance[size_t(i)];
    }
    std::vector<int32_t> by_importance(static_cast<size_t>(E));
    std::iota(by_importance.begin(), by_importance.end(), 0);
    std::stable_sort(by_importance.begin(), by_importance.end(), [&](int32_t a, int32_t b) {
      return group_importance[size_t(a)] > group_importance[size_t(b)];
    });
    std::vector<bool> is_shared(static_cast<size_t>(E), false);
    for (int64_t s = 0; s < spec.shared; ++s) is_shared[size_t(by_importance[size_t(s)])] = true;
    std::vector<std::vector<int32_t>> routed_groups;
    std::vector<int32_t> routed_neurons, shared_neurons;
    for (int64_t g = 0; g < E; ++g) {
      if (is_shared[size_t(g)]) {
        shared_neurons.insert(shared_neurons.end(), members[size_t(g)].begin(), members[size_t(g)].end());
        continue;
      }
      routed_groups.push_back(members[size_t(g)]);
      std::vector<int32_t> slots = members[size_t(g)];
      slots.resize(size_t(width), -1);  // zero neurons pad the group
      routed_neurons.insert(routed_neurons.end(), slots.begin(), slots.end());
    }

    auto name = [l](const char* what) { return fmt::format("blk.{}.{}.weight", l, what); };
    std::vector<float> router = fit_router(x, h, T, d, H, routed_groups, pool);
    if (spec.zero > 0) {
      const float tau = zero_expert_logit(router, x, T, d, routed, std::min(spec.top_k, routed));
      router.resize(size_t((routed + spec.zero) * d), 0.0f);
      std::vector<float> bias(size_t(routed + spec.zero), 0.0f);
      std::fill(bias.begin() + routed, bias.end(), tau);
      add_owned_tensor(out, fmt::format("blk.{}.ffn_gate_inp.bias", l), DType::F32, {uint64_t(routed + spec.zero)},
                       encode_matrix(bias, 1, routed + spec.zero, DType::F32));
    }
    add_owned_tensor(out, name("ffn_gate_inp"), DType::F32, {uint64_t(routed + spec.zero), uint64_t(d)},
                     encode_matrix(router, routed + spec.zero, d, DType::F32));
    const uint64_t R = uint64_t(routed), W = uint64_t(width), D = uint64_t(d);
    add_owned_tensor(out, name("ffn_gate_exps"), dense->gate().type, {R, W, D}, gather_rows(dense->gate(), routed_neurons));
    add_owned_tensor(out, name("ffn_up_exps"), dense->up().type, {R, W, D}, gather_rows(dense->up(), routed_neurons));
    const DType down_type = dtype_row_ok(dense->down().type, W) ? dense->down().type : DType::F16;
    add_owned_tensor(out, name("ffn_down_exps"), down_type, {R, D, W},
               gather_columns(down, d, H, routed_neurons, width, down_type));
    if (!shared_neurons.empty()) {
      const uint64_t S = shared_neurons.size();
      add_owned_tensor(out, name("ffn_gate_shexp"), dense->gate().type, {S, D}, gather_rows(dense->gate(), shared_neurons));
      add_owned_tensor(out, name("ffn_up_shexp"), dense->up().type, {S, D}, gather_rows(dense->up(), shared_neurons));
      const DType shared_down = dtype_row_ok(dense->down().type, S) ? dense->down().type : DType::F16;
      add_owned_tensor(out, name("ffn_down_shexp"), shared_down, {D, S},
                 gather_columns(down, d, H, shared_neurons, int64_t(S), shared_down));
    }
  }
  MoeParams p;
  p.n_experts = routed;
  p.expert_hidden = width;
  p.n_zero = spec.zero;
  p.routing.top_k = spec.top_k;
  p.routing.gating = MoeGating::Unit;
  p.routing.renormalize = false;
  write_moe_params(out, p);
  out.extra_metadata.emplace_back("ffn.moe.conversion", GgufValue::of_string(spec.text));
  return out;
}

}  // namespace ffn
