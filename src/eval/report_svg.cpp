// The report's plot, written as SVG directly (no plotting dependency):
// perplexity (lower is better) against decode tokens/s (higher is better),
// one labelled point per variant. Without bench figures the x axis is the
// variant's index.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "eval/report.h"

namespace ffn {

namespace {

std::string escape_xml(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

// Round axis limits outwards to a "nice" step.
void nice_range(double& lo, double& hi) {
  if (!(hi > lo)) {
    const double pad = std::max(std::fabs(lo) * 0.05, 1e-3);
    lo -= pad;
    hi += pad;
  }
  const double span = hi - lo;
  lo -= 0.08 * span;
  hi += 0.08 * span;
}

}  // namespace

std::string report_svg(const Report& rep) {
  const double W = 720, H = 480, left = 80, right = 30, top = 40, bottom = 60;
  const bool bench = rep.options.run_bench;
  std::vector<double> xs, ys;
  for (size_t i = 0; i < rep.rows.size(); ++i) {
    xs.push_back(bench ? rep.rows[i].decode_tok_s : double(i));
    ys.push_back(rep.rows[i].ppl);
  }
  double x0 = xs.empty() ? 0 : *std::min_element(xs.begin(), xs.end());
  double x1 = xs.empty() ? 1 : *std::max_element(xs.begin(), xs.end());
  double y0 = ys.empty() ? 0 : *std::min_element(ys.begin(), ys.end());
  double y1 = ys.empty() ? 1 : *std::max_element(ys.begin(), ys.end());
  nice_range(x0, x1);
  nice_range(y0, y1);
  auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * (W - left - right); };
  auto py = [&](double y) { return H - bottom - (y - y0) / (y1 - y0) * (H - top - bottom); };
  std::string s = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{0}\" height=\"{1}\" viewBox=\"0 0 {0} {1}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n",
      W, H);
  s += fmt::format("<text x=\"{}\" y=\"22\" font-size=\"15\" text-anchor=\"middle\">{}</text>\n", W / 2,
                   escape_xml("quality vs decode speed: " + rep.options.model));
  // Axes, ticks and grid.
  s += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{2}\" y2=\"{1}\" stroke=\"black\"/>\n", left, H - bottom, W - right);
  s += fmt::format("<line x1=\"{0}\" y1=\"{1}\" x2=\"{0}\" y2=\"{2}\" stroke=\"black\"/>\n", left, top, H - bottom);
  for (int i = 0; i <= 5; ++i) {
    const double xv = x0 + (x1 - x0) * i / 5, yv = y0 + (y1 - y0) * i / 5;
    s += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1}\" x2=\"{0:.1f}\" y2=\"{2}\" stroke=\"#ddd\"/>\n", px(xv), top,
                     H - bottom);
    s += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{:.4g}</text>\n", px(xv), H - bottom + 18, xv);
    s += fmt::format("<line x1=\"{0}\" y1=\"{1:.1f}\" x2=\"{2}\" y2=\"{1:.1f}\" stroke=\"#ddd\"/>\n", left, py(yv),
                     W - right);
    s += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{:.4g}</text>\n", left - 6, py(yv) + 4, yv);
  }
  s += fmt::format("<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n", (left + W - right) / 2, H - 18,
                   bench ? "decode tokens/s (higher is better)" : "variant");
  s += fmt::format("<text x=\"18\" y=\"{0}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {0})\">"
                   "perplexity (lower is better)</text>\n",
                   (top + H - bottom) / 2);
  for (size_t i = 0; i < rep.rows.size(); ++i) {
    s += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"5\" fill=\"#1f77b4\"/>\n", px(xs[i]), py(ys[i]));
    s += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n", px(xs[i]) + 8, py(ys[i]) - 6,
                     escape_xml(rep.rows[i].variant));
  }
  s += "</svg>\n";
  return s;
}

}  // namespace ffn
