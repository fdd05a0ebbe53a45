// A one-line progress bar on stderr (done/total, rate, ETA), drawn only when
// stderr is a terminal and not disabled by --no-progress.
#pragma once

#include <cstdint>
#include <string>

#include "core/timer.h"

namespace ffn::cli {

class Progress {
 public:
  Progress(std::string label, bool enabled);
  void update(int64_t done, int64_t total);
  void finish();

 private:
  std::string label_;
  bool enabled_;
  bool drawn_ = false;
  Timer timer_;
  double last_draw_ = -1;
};

}  // namespace ffn::cli
