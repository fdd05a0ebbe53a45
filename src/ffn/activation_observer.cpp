#include "ffn/activation_observer.h"

namespace ffn {

const char* site_name(Site s) {
  switch (s) {
    case Site::AttnIn: return "attn_in";
    case Site::AttnOut: return "attn_out";
    case Site::FfnIn: return "ffn_in";
    case Site::FfnGate: return "ffn_gate";
    case Site::FfnUp: return "ffn_up";
    case Site::FfnMid: return "ffn_mid";
  }
  return "?";
}

}  // namespace ffn
