#include "model/sparsity_plan.h"

#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <initializer_list>
#include <tuple>
#include <utility>

#include "core/error.h"
#include "core/mapped_file.h"
#include "ffn/gated_ffn.h"
#include "kernels/sparse_input_q8.h"
#include "model/llama_config.h"
#include "model/llama_model.h"
#include "model/weights.h"

namespace ffn {

std::string sparsity_method_name(SparsityMethod m) {
  switch (m) {
    case SparsityMethod::Teal: return "teal";
    case SparsityMethod::Cats: return "cats";
    case SparsityMethod::Chess: return "chess";
    case SparsityMethod::ChessFfn: return "chess-ffn";
    case SparsityMethod::StatTopK: return "stat-topk";
    case SparsityMethod::TopK: return "topk";
  }
  return "?";
}

bool needs_calibration(SparsityMethod m) {
  return m == SparsityMethod::Teal || m == SparsityMethod::Cats || m == SparsityMethod::Chess ||
         m == SparsityMethod::ChessFfn;
}

SparsitySpec parse_sparsity_spec(const std::string& text, const std::string& where) {
  const auto colon = text.find(':');
  const std::string expected = "METHOD:TARGET with METHOD teal|cats|chess|chess-ffn|stat-topk|topk and TARGET in [0, 1)";
  if (colon == std::string::npos) fail(where, "value", expected, "\"" + text + "\"");
  const std::string method = text.substr(0, colon), target = text.substr(colon + 1);
  SparsitySpec spec;
  if (method == "teal") spec.method = SparsityMethod::Teal;
  else if (method == "cats") spec.method = SparsityMethod::Cats;
  else if (method == "chess") spec.method = SparsityMethod::Chess;
  else if (method == "chess-ffn") spec.method = SparsityMethod::ChessFfn;
  else if (method == "stat-topk") spec.method = SparsityMethod::StatTopK;
  else if (method == "topk") spec.method = SparsityMethod::TopK;
  else fail(where, "method", "teal, cats, chess, chess-ffn, stat-topk or topk", "\"" + method + "\"");
  double v = -1;
  const auto res = std::from_chars(target.data(), target.data() + target.size(), v);
  if (res.ec != std::errc() || res.ptr != target.data() + target.size() || !(v >= 0 && v < 1))
    fail(where, "target", "a number in [0, 1)", "\"" + target + "\"");
  spec.target = v;
  return spec;
}

namespace {

const GatedFfn& dense_ffn(const LlamaModel& model, size_t l) {
  const auto* g = dynamic_cast<const GatedFfn*>(model.layers()[l].ffn.get());
  if (!g) throw Error(fmt::format("activation sparsity needs the dense gated FFN in layer {} (found: {})", l,
                                  model.layers()[l].ffn->describe()));
  return *g;
}

}  // namespace

std::vector<std::string> transposed_matrices(const LayerSparsityPlan& p, size_t l) {
  std::vector<std::string> out;
  auto add = [&](const char* what) { out.push_back(fmt::format("blk.{}.{}.weight", l, what)); };
  if (p.attn_in_threshold > 0) {
    add("attn_q");
    if (!p.attn_q_only) {
      add("attn_k");
      add("attn_v");
    }
  }
  if (p.attn_out_threshold > 0) add("attn_output");
  if (p.teal.ffn_in > 0) {
    add("ffn_gate");
    add("ffn_up");
  }
  if (p.teal.ffn_mid > 0 || p.gate_sparse) add("ffn_down");
  return out;
}

std::unique_ptr<SparsityMeter> apply_sparsity(LlamaModel& model, const SparsityPlan& plan, ThreadPool* pool) {
  auto meter = std::make_unique<SparsityMeter>();
  const auto& c = model.config();
  const bool teal = plan.spec.method == SparsityMethod::Teal;
  auto bytes_per_weight = [](const WeightMatrix& w) { return double(dtype_row_bytes(w.type, 32)) / 32.0; };
  for (size_t l = 0; l < plan.layers.size(); ++l) {
    const LayerSparsityPlan& p = plan.layers[l];
    LlamaLayer& L = model.layers()[l];
    const bool attn = p.attn_in_threshold > 0 || p.attn_out_threshold > 0;
    const bool ffn_teal = p.teal.ffn_in > 0 || p.teal.ffn_mid > 0;
    if (!attn && !ffn_teal && !p.gate_sparse) continue;
    const GatedFfn& dense = dense_ffn(model, l);
    auto name = [l](const char* site) { return fmt::format("blk.{}.{}", l, site); };
    // W^T from the file when it stores it so, else transposed now. Reading
    // w's rows faults its file pages back in (packing released them), so
    // they are released again: else a runtime TEAL model kept the whole
    // file resident beside its packed W and W^T (RSS +1 GB on TinyLlama
    // Q8_0). A path that reads those rows later faults them in again.
    auto transpose = [&](const char* tensor, const WeightMatrix& w) {
      const WeightMatrix* t = model.pretransposed(fmt::format("blk.{}.{}.weight", l, tensor));
      if (t) return *t;
      WeightMatrix wt = transposed(w, pool);
      if (!w.owned && w.data) release_mapped_pages(w.data, w.bytes());
      return wt;
    };
    // Matrices that read the same sparse input, side by side (one longer row
    // per input: one product, one longer contiguous read), re-laid for the
    // VNNI input-sparse kernel where it runs (Q8_0/Q4_0) in the same step.
    // The parts' file pages, if any, leave the resident set.
    auto fused = [&](std::initializer_list<const WeightMatrix*> parts) {
      WeightMatrix f = packed_for_sparse_input(parts, pool);
      if (!f.packed && parts.size() > 1)
        for (const WeightMatrix* p : parts)
          if (!p->owned) release_mapped_pages(p->data, p->bytes());
      return f;
    };
    // The W^T form of the named matrices, side by side (`fused`). Transposed
    // straight into the VNNI layout where none is stored transposed in the
    // file and the layout takes them: no transposed copy in between (each
    // was a fresh allocation zeroed, written and read once at load).
    using Named = std::pair<const char*, const WeightMatrix*>;
    auto sparse_input_form = [&]<typename... N>(N... named) -> WeightMatrix {
      const bool in_file =
          (... || (model.pretransposed(fmt::format("blk.{}.{}.weight", l, named.first)) != nullptr));
      if (!in_file && can_pack_transposed_for_sparse_input({named.second...}))
        return packed_transposed_for_sparse_input({named.second...}, pool);
      const std::array<WeightMatrix, sizeof...(N)> parts{transpose(named.first, *named.second)...};
      return std::apply([&](const auto&... t) { return fused({&t...}); }, parts);
    };
    if (attn || teal) {
      auto S = std::make_unique<AttentionSparsity>();
      S->in_threshold = p.attn_in_threshold;
      S->out_threshold = p.attn_out_threshold;
      S->q_only = p.attn_q_only;
      if (S->in_threshold > 0) {
        if (S->q_only)
          S->wq_t = sparse_input_form(Named{"attn_q", &L.wq});
        else
          S->wqkv_t = sparse_input_form(Named{"attn_q", &L.wq}, Named{"attn_k", &L.wk}, Named{"attn_v", &L.wv});
      }
      if (S->out_threshold > 0) S->wo_t = sparse_input_form(Named{"attn_output", &L.wo});
      const uint64_t in_weights = uint64_t(S->q_only ? c.dim : c.dim + 2 * c.kv_dim);
      S->in_site = meter->add(name("attn_in"), SparsitySection::Attention, in_weights,
                              double(in_weights) * bytes_per_weight(L.wq), teal);
      S->out_site = meter->add(name("attn_out"), SparsitySection::Attention, uint64_t(c.dim),
                               double(c.dim) * bytes_per_weight(L.wo), teal);
      L.attn_sparsity = std::move(S);
    }
    // The thresholds decide, not the method's name: a file's plan was
    // validated against the transposed matrices its thresholds read.
    if (ffn_teal) {
      auto* in_site = meter->add(name("ffn_in"), SparsitySection::Ffn, uint64_t(2 * c.hidden_dim),
                                 2.0 * double(c.hidden_dim) * bytes_per_weight(dense.gate()), true);
      auto* mid_site = meter->add(name("ffn_mid"), SparsitySection::Ffn, uint64_t(c.dim),
                                  double(c.dim) * bytes_per_weight(dense.down()), true);
      const bool in = p.teal.ffn_in > 0, mid = p.teal.ffn_mid > 0;
      TealFfn::Weights w;
      w.gate = dense.gate();
      w.up = dense.up();
      w.down = dense.down();
      if (in) w.gate_up_t = sparse_input_form(Named{"ffn_gate", &dense.gate()}, Named{"ffn_up", &dense.up()});
      if (mid) w.down_t = sparse_input_form(Named{"ffn_down", &dense.down()});
      L.ffn = std::make_unique<TealFfn>(std::move(w), p.teal, in_site, mid_site);
    } else if (p.gate_sparse) {
      // A neuron off skips its row of up and its column of down.
      auto* site = meter->add(name("ffn_neurons"), SparsitySection::Ffn, uint64_t(2 * c.dim),
                              double(c.dim) * (bytes_per_weight(dense.up()) + bytes_per_weight(dense.down())), true);
      WeightMatrix down_t = sparse_input_form(Named{"ffn_down", &dense.down()});
      L.ffn = std::make_unique<GateSparseFfn>(dense.gate(), dense.up(), std::move(down_t), p.gate, site, dense.down(),
                                              pool);
    }
  }
  model.set_sparsity_plan_applied();
  return meter;
}

std::optional<SparsityPlan> read_sparsity_plan(const ModelSource& src, const LlamaConfig& c) {
  auto find = [&](const std::string& key) -> const GgufValue* {
    for (const auto& [k, v] : src.extra_metadata)
      if (k == std::string(kSparsityKeyPrefix) + key) return &v;
    return nullptr;
  };
  const GgufValue* method = find("method");
  if (!method) return std::nullopt;
  auto key_name = [](const char* key) { return std::string(kSparsityKeyPrefix) + key; };
  auto get = [&](const char* key) -> const GgufValue& {
    const GgufValue* v = find(key);
    if (!v) fail(src.path, key_name(key), "a metadata key (the file has ffn.sparsity.method)", "none");
    return *v;
  };
  auto get_string = [&](const char* key) {
    const GgufValue& v = get(key);
    if (v.type != GgufType::STRING) fail(src.path, key_name(key), "a string", gguf_type_name(v.type));
    return v.s;
  };
  auto get_float = [&](const char* key, double lo, double hi) {
    const GgufValue& v = get(key);
    if (!v.is_float() || !(v.f >= lo && v.f <= hi))
      fail(src.path, key_name(key), fmt::format("a float in [{}, {}]", lo, hi), v.to_display());
    return v.f;
  };
  auto get_floats = [&](const char* key, size_t count) {
    const GgufValue& v = get(key);
    if (v.type != GgufType::ARRAY || v.elem_type != GgufType::F32 || v.array.size() != count)
      fail(src.path, key_name(key), fmt::format("an array of {} f32", count), v.to_display());
    std::vector<float> out;
    out.reserve(count);
    for (const auto& e : v.array) {
      if (std::isnan(e.f) || e.f < 0) fail(src.path, key_name(key), "non-negative thresholds", fmt::format("{}", e.f));
      out.push_back(float(e.f));
    }
    return out;
  };
  SparsityPlan plan;
  const std::string m = get_string("method");
  plan.spec = parse_sparsity_spec(fmt::format("{}:{}", m, get_float("target", 0.0, 0.999999)),
                                  src.path + ": " + key_name("method"));
  const size_t n = static_cast<size_t>(c.n_layers);
  const auto attn_in = get_floats("attn_in_threshold", n), attn_out = get_floats("attn_out_threshold", n);
  const auto ffn_in = get_floats("ffn_in_threshold", n), ffn_mid = get_floats("ffn_mid_threshold", n);
  const auto gate_threshold = get_floats("gate_threshold", n);
  const GgufValue& qo = get("attn_q_only");
  if (qo.type != GgufType::BOOL) fail(src.path, key_name("attn_q_only"), "a bool", gguf_type_name(qo.type));
  const std::string rule = get_string("gate_rule");
  GateRule gate;
  bool gate_sparse = true;
  if (rule == "none") gate_sparse = false;
  else if (rule == "cats") gate.kind = GateRule::Kind::Threshold;
  else if (rule == "chess") gate.kind = GateRule::Kind::ChannelThreshold;
  else if (rule == "stat-topk") gate.kind = GateRule::Kind::StatisticalTopK;
  else if (rule == "topk") gate.kind = GateRule::Kind::ExactTopK;
  else fail(src.path, key_name("gate_rule"), "none, cats, chess, stat-topk or topk", rule);
  gate.keep_fraction = get_float("keep_fraction", 0.0, 1.0);
  std::vector<float> channel;
  if (gate_sparse && gate.kind == GateRule::Kind::ChannelThreshold)
    channel = get_floats("channel_thresholds", n * static_cast<size_t>(c.hidden_dim));
  for (size_t l = 0; l < n; ++l)
    if (gate_sparse && (ffn_in[l] > 0 || ffn_mid[l] > 0))
      fail(src.path, key_name("gate_rule"), "none when the TEAL FFN thresholds (ffn_in/ffn_mid) are set",
           "\"" + rule + "\"");
  plan.layers.resize(n);
  for (size_t l = 0; l < n; ++l) {
    auto& p = plan.layers[l];
    p.attn_in_threshold = attn_in[l];
    p.attn_out_threshold = attn_out[l];
    p.attn_q_only = qo.u != 0;
    p.teal.ffn_in = ffn_in[l];
    p.teal.ffn_mid = ffn_mid[l];
    p.gate_sparse = gate_sparse;
    p.gate = gate;
    p.gate.threshold = gate_threshold[l];
    if (!channel.empty())
      p.gate.channel_thresholds.assign(channel.begin() + l * c.hidden_dim, channel.begin() + (l + 1) * c.hidden_dim);
  }
  // Every matrix the plan reads by input must be in the file transposed, and
  // every matrix stored only transposed must be one the plan reads so (the
  // dense path has no other copy of it).
  for (size_t l = 0; l < n; ++l) {
    const auto used = transposed_matrices(plan.layers[l], l);
    for (const auto& name : used)
      if (!src.find(transposed_tensor_name(name)))
        fail(src.path, transposed_tensor_name(name), "the transposed matrix the sparsity plan reads", "none");
    for (const char* what : {"attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"}) {
      const std::string name = fmt::format("blk.{}.{}.weight", l, what);
      if (!src.find(name) && src.find(transposed_tensor_name(name)) &&
          std::find(used.begin(), used.end(), name) == used.end())
        fail(src.path, transposed_tensor_name(name), "a matrix the sparsity plan reads by input",
             "one its thresholds keep dense (and no row-major copy)");
    }
  }
  return plan;
}

}  // namespace ffn
