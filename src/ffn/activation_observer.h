// ActivationObserver: a read-only tap on the activations inside a forward
// pass, used by calibration (activation statistics for sparsity thresholds)
// and by `ffn inspect --activations`. The model reports the inputs of its
// linear layers; FFN variants report their internal activations. A null
// observer costs one branch per site.
#pragma once

#include <cstdint>

namespace ffn {

// Where in a layer an activation is observed (Llama-family naming).
enum class Site {
  AttnIn,   // normalised input of the q/k/v projections     [n, d_model]
  AttnOut,  // attention output, the input of the o projection [n, d_model]
  FfnIn,    // normalised input of the FFN (gate/up input)    [n, d_model]
  FfnGate,  // gate pre-activation W_gate x                   [n, hidden]
  FfnUp,    // up projection W_up x                           [n, hidden]
  FfnMid,   // act(gate) * up, the input of the down projection [n, hidden]
};
inline constexpr int kSiteCount = 6;

const char* site_name(Site s);

class ActivationObserver {
 public:
  virtual ~ActivationObserver() = default;
  // data: n_tok rows of width floats, valid only during the call.
  virtual void observe(int64_t layer, Site site, const float* data, int64_t n_tok, int64_t width) = 0;
};

// The observer of one forward call and the layer being run; carried in Scratch
// so FFN variants can report without knowing about models.
struct ActivationTap {
  ActivationObserver* observer = nullptr;
  int64_t layer = 0;

  void operator()(Site site, const float* data, int64_t n_tok, int64_t width) const {
    if (observer) observer->observe(layer, site, data, n_tok, width);
  }
};

}  // namespace ffn
