// SparsityMeter: counts, at every sparsified site of a model, how many
// activations were zeroed, so the achieved sparsity is measured on the text
// actually run, never assumed from the calibration target.
//
// Each site also records how many weights one of its activations feeds
// (e.g. an FFN input channel feeds one column of gate and of up: 2 * hidden),
// so skipped_weight_fraction() is the fraction of the sparsified layers'
// weights that was not read — the quantity that turns into decode speed.
#pragma once

#include <cstdint>
#include <deque>
#include <string>

namespace ffn {

// Where a site's skipped weights would have been read (the sections of
// ForwardProfile): the q/k/v/o projections or the FFN.
enum class SparsitySection { Attention, Ffn };

struct SparsitySite {
  std::string name;               // e.g. "blk.3.ffn_mid"
  SparsitySection section = SparsitySection::Ffn;
  uint64_t weights_per_activation = 0;
  double bytes_per_activation = 0;   // weight bytes one dropped activation skips
  bool counts_toward_target = true;  // part of the method's own sparsity definition
  uint64_t zeros = 0;             // activations dropped
  uint64_t total = 0;             // activations seen

  void record(uint64_t kept, uint64_t seen) {
    zeros += seen - kept;
    total += seen;
  }
};

class SparsityMeter {
 public:
  // The returned pointer stays valid for the meter's lifetime.
  SparsitySite* add(std::string name, SparsitySection section, uint64_t weights_per_activation,
                    double bytes_per_activation, bool counts_toward_target) {
    sites_.push_back(
        {std::move(name), section, weights_per_activation, bytes_per_activation, counts_toward_target, 0, 0});
    return &sites_.back();
  }
  void reset() {
    for (auto& s : sites_) s.zeros = s.total = 0;
  }
  // Weighted by weights_per_activation over the sites that count toward the
  // target: for TEAL that is the fraction of block weights skipped; for
  // CATS/CHESS/top-k (one FFN site per layer) the fraction of FFN neurons off.
  double achieved_sparsity() const { return ratio(true); }
  // Over every registered site (including dense ones registered with zero).
  double skipped_weight_fraction() const { return ratio(false); }
  // Weight bytes not read, summed over every recorded token.
  double skipped_bytes() const {
    return skipped_bytes(SparsitySection::Attention) + skipped_bytes(SparsitySection::Ffn);
  }
  double skipped_bytes(SparsitySection section) const {
    double b = 0;
    for (const auto& s : sites_)
      if (s.section == section) b += double(s.zeros) * s.bytes_per_activation;
    return b;
  }
  const std::deque<SparsitySite>& sites() const { return sites_; }

 private:
  double ratio(bool target_only) const {
    double zeros = 0, total = 0;
    for (const auto& s : sites_) {
      if (target_only && !s.counts_toward_target) continue;
      zeros += double(s.zeros) * double(s.weights_per_activation);
      total += double(s.total) * double(s.weights_per_activation);
    }
    return total > 0 ? zeros / total : 0.0;
  }
  std::deque<SparsitySite> sites_;
};

}  // namespace ffn
