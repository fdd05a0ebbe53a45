#include "progress.h"

#include <fmt/format.h>
#include <unistd.h>

#include <cstdio>

namespace ffn::cli {

Progress::Progress(std::string label, bool enabled)
    : label_(std::move(label)), enabled_(enabled && ::isatty(2)) {}

void Progress::update(int64_t done, int64_t total) {
  if (!enabled_) return;
  const double t = timer_.seconds();
  if (done < total && t - last_draw_ < 0.1) return;
  last_draw_ = t;
  const double rate = t > 0 ? done / t : 0;
  const double eta = rate > 0 ? (total - done) / rate : 0;
  const int width = 30;
  const int fill = total > 0 ? static_cast<int>(width * done / total) : 0;
  fmt::print(stderr, "\r{} [{}{}] {}/{} tok  {:.0f} tok/s  ETA {:.0f}s   ", label_,
             std::string(fill, '#'), std::string(width - fill, '.'), done, total, rate, eta);
  std::fflush(stderr);
  drawn_ = true;
}

void Progress::finish() {
  if (drawn_) fmt::print(stderr, "\n");
  drawn_ = false;
}

}  // namespace ffn::cli
