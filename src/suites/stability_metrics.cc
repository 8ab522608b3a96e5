// The stability metrics of a perturbation grid, and position bias (see stability_metrics.h).
#include "suites/stability_metrics.h"

#include <fmt/format.h>

#include <algorithm>

#include "plumb/stability.h"

namespace plumb::suites {
std::vector<Rate> SumRates(const std::vector<std::vector<Rate>>& by_cluster,
                           const std::vector<int>& counts, size_t slots) {
  std::vector<Rate> sum(slots);
  for (size_t i = 0; i < by_cluster.size(); ++i) {
    for (size_t s = 0; s < slots; ++s) {
      sum[s].k += counts[i] * by_cluster[i][s].k;
      sum[s].n += counts[i] * by_cluster[i][s].n;
    }
  }
  return sum;
}

namespace {

// A variant's primary metric from its summed rates: the kind's score, or the rate of slot 0.
std::optional<double> ScoreOf(const StabilityScore::Function& score,
                              const std::vector<Rate>& rates) {
  if (score) return score(rates);
  if (rates[0].n == 0) return std::nullopt;
  return 100.0 * static_cast<double>(rates[0].k) / static_cast<double>(rates[0].n);
}

int64_t Trials(const std::vector<Rate>& rates) {
  int64_t n = 0;
  for (const Rate& r : rates) n += r.n;
  return n;
}

}  // namespace

std::optional<double> HarmonicMeanOfRates(const std::vector<Rate>& r) {
  if (r.size() < 2 || r[0].n == 0 || r[1].n == 0) return std::nullopt;
  double p = 100.0 * static_cast<double>(r[0].k) / static_cast<double>(r[0].n);
  double q = 100.0 * static_cast<double>(r[1].k) / static_cast<double>(r[1].n);
  if (p + q == 0) return 0.0;  // the harmonic mean's limit at 0 and 0
  return 2 * p * q / (p + q);
}

StabilityMetrics::StabilityMetrics(const std::vector<Item>& items,
                                   std::vector<std::string> variants, StabilityScore score,
                                   const MetricOptions& options)
    : items_(items), variants_(std::move(variants)), score_(std::move(score)), options_(options) {}

void StabilityMetrics::Add(size_t item, int epoch, const std::string& cluster, int stratum,
                           size_t slot, bool success, int chosen) {
  const Json& f = items_[item].fields;
  if (!f.contains("variant") || !f.contains("base") || slot >= score_.slots) return;
  const size_t v = f["variant"].get<size_t>();
  if (v >= variants_.size()) return;
  auto [it, fresh] = cluster_index_.emplace(cluster, clusters_.size());
  if (fresh) {
    clusters_.push_back(cluster);
    strata_.push_back(stratum);
    rates_.emplace_back(variants_.size(), std::vector<Rate>(score_.slots));
  }
  Rate& r = rates_[it->second][v][slot];
  r.n++;
  r.k += success ? 1 : 0;
  const std::string unit = f["base"].get<std::string>();
  std::vector<int>& c = chosen_[{unit, epoch}];
  if (c.empty()) c.assign(variants_.size(), -2);
  c[v] = chosen;
  unit_cluster_[unit] = it->second;
}

void StabilityMetrics::Finish(std::vector<Metric>& out) const {
  if (clusters_.empty()) return;
  const size_t nv = variants_.size(), slots = score_.slots;
  // The primary metric under each variant (clusters: the file's items).
  for (size_t v = 0; v < nv; ++v) {
    std::vector<std::string> names;
    std::vector<int> strata;
    std::vector<std::vector<Rate>> rates;
    for (size_t c = 0; c < clusters_.size(); ++c) {
      if (Trials(rates_[c][v]) == 0) continue;
      names.push_back(clusters_[c]);
      strata.push_back(strata_[c]);
      rates.push_back(rates_[c][v]);
    }
    if (!score_.score) {
      std::vector<Cluster> clusters;
      for (size_t i = 0; i < rates.size(); ++i)
        clusters.push_back(Cluster{rates[i][0].k, rates[i][0].n, names[i]});
      out.push_back(ProportionMetric(score_.primary, variants_[v], clusters, options_));
      continue;
    }
    out.push_back(BootstrapMetric(
        score_.primary, variants_[v], names,
        [rates, slots, f = score_.score](const std::vector<int>& counts) {
          return f(SumRates(rates, counts, slots));
        },
        options_, strata));
  }
  // Clusters answered under every variant: the paired comparisons are over them.
  std::vector<std::string> names;
  std::vector<int> strata;
  std::vector<std::vector<std::vector<Rate>>> rates;  // [cluster][variant][slot]
  for (size_t c = 0; c < clusters_.size(); ++c) {
    bool all = true;
    for (size_t v = 0; v < nv; ++v) all = all && Trials(rates_[c][v]) > 0;
    if (!all) continue;
    names.push_back(clusters_[c]);
    strata.push_back(strata_[c]);
    rates.push_back(rates_[c]);
  }
  if (names.empty()) return;
  // The score of the variants `vs` pooled, over clusters drawn counts[i] times.
  auto pooled = [rates, slots, f = score_.score](const std::vector<int>& counts,
                                                 const std::vector<size_t>& vs) {
    std::vector<Rate> sum(slots);
    for (size_t i = 0; i < rates.size(); ++i) {
      for (size_t v : vs) {
        for (size_t s = 0; s < slots; ++s) {
          sum[s].k += counts[i] * rates[i][v][s].k;
          sum[s].n += counts[i] * rates[i][v][s].n;
        }
      }
    }
    return ScoreOf(f, sum);
  };
  // variant_spread: the largest minus the smallest variant score (points).
  Metric spread = BootstrapMetric(
      "variant_spread", "", names,
      [pooled, nv](const std::vector<int>& counts) -> std::optional<double> {
        double lo = 0, hi = 0;
        for (size_t v = 0; v < nv; ++v) {
          std::optional<double> s = pooled(counts, {v});
          if (!s) return std::nullopt;
          lo = v == 0 ? *s : std::min(lo, *s);
          hi = v == 0 ? *s : std::max(hi, *s);
        }
        return hi - lo;
      },
      options_, strata);
  std::vector<std::vector<std::vector<double>>> cells;
  for (const auto& by_variant : rates) {
    std::vector<std::vector<double>> row;
    for (const auto& by_slot : by_variant) {
      std::vector<double> cell;
      for (const Rate& r : by_slot) {
        cell.push_back(static_cast<double>(r.k));
        cell.push_back(static_cast<double>(r.n));
      }
      row.push_back(std::move(cell));
    }
    cells.push_back(std::move(row));
  }
  SpreadTest test = CountsSpreadTest(
      cells,
      [slots, f = score_.score](const std::vector<double>& sums) {
        std::vector<Rate> r(slots);
        for (size_t s = 0; s < slots; ++s) {
          r[s] = Rate{static_cast<int64_t>(sums[2 * s]), static_cast<int64_t>(sums[2 * s + 1])};
        }
        return ScoreOf(f, r);
      },
      kSpreadPermutations, options_.seed);
  spread.details["p_value"] = test.p_value;
  spread.details["permutations"] = test.permutations;
  spread.details["verdict"] =
      test.p_value < kSpreadAlpha
          ? "the presentation changes the score beyond sampling noise"
          : "stable: the differences between variants are within sampling noise";
  out.push_back(std::move(spread));
  // consistency: clusters whose outcome is the same in every variant.
  auto outcome = [this](const std::vector<Rate>& r) {
    if (score_.outcome) return score_.outcome(r);
    int code = 0;
    for (const Rate& s : r) code = code * 3 + (s.n == 0 ? 0 : 2 * s.k > s.n ? 2 : 1);
    return code;
  };
  std::vector<Cluster> consistent;
  for (size_t i = 0; i < rates.size(); ++i) {
    bool same = true;
    for (size_t v = 1; v < nv; ++v) same = same && outcome(rates[i][v]) == outcome(rates[i][0]);
    consistent.push_back(Cluster{same ? 1 : 0, 1, names[i]});
  }
  out.push_back(ProportionMetric("consistency", "", consistent, options_));
  // label_bias: the score under letter labels minus under number labels (points), when the
  // grid has both.
  std::vector<size_t> letters, numbers;
  for (size_t v = 0; v < nv; ++v) {
    if (variants_[v].find("labels=letters") != std::string::npos) letters.push_back(v);
    if (variants_[v].find("labels=numbers") != std::string::npos) numbers.push_back(v);
  }
  if (!letters.empty() && !numbers.empty()) {
    out.push_back(BootstrapMetric(
        "label_bias", "", names,
        [pooled, letters, numbers](const std::vector<int>& counts) -> std::optional<double> {
          std::optional<double> l = pooled(counts, letters), n = pooled(counts, numbers);
          if (!l || !n) return std::nullopt;
          return *l - *n;
        },
        options_, strata));
  }
  // choice_agreement: Fleiss' kappa of the option chosen (or none) across variants, per item
  // before the grid and epoch; the bootstrap draws the file's items with all their subjects.
  int categories = 1;
  std::map<size_t, std::vector<std::vector<int>>> by_cluster;
  for (const auto& [key, chosen] : chosen_) {
    if (std::find(chosen.begin(), chosen.end(), -2) != chosen.end()) continue;
    for (int c : chosen) categories = std::max(categories, c + 2);
    by_cluster[unit_cluster_.at(key.first)].push_back(chosen);
  }
  if (by_cluster.empty()) return;
  std::vector<std::vector<std::vector<int>>> subjects;
  std::vector<std::string> subject_clusters;
  for (auto& [c, rows] : by_cluster) {
    subjects.push_back(std::move(rows));
    subject_clusters.push_back(clusters_[c]);
  }
  auto kappa = [subjects, categories](const std::vector<int>& counts) -> std::optional<double> {
    std::vector<std::vector<int64_t>> table;
    for (size_t i = 0; i < subjects.size(); ++i) {
      for (const auto& chosen : subjects[i]) {
        std::vector<int64_t> row(static_cast<size_t>(categories), 0);
        for (int c : chosen) row[static_cast<size_t>(c + 1)]++;
        for (int r = 0; r < counts[i]; ++r) table.push_back(row);
      }
    }
    return FleissKappa(table);
  };
  out.push_back(BootstrapMetric("choice_agreement", "", subject_clusters, kappa, options_));
}

void PositionCounts::Add(size_t item, const Grade& g) {
  if (!g.details.contains("position") || !g.details.contains("aligned_position")) return;
  const size_t chosen = g.details["position"].get<size_t>();
  const size_t aligned = g.details["aligned_position"].get<size_t>();
  if (table_.empty()) {
    if (width_ == 0) {
      for (const Item& it : items_)
        width_ = std::max(width_, it.fields.value("options", Json::array()).size());
    }
    width_ = std::min<size_t>(width_, 26);
    table_.assign(items_.size() * 2 * width_, 0);
  }
  if (chosen >= width_ || aligned >= width_) return;
  uint32_t* row = &table_[item * 2 * width_];
  row[chosen]++;
  row[width_ + aligned]++;
  any_ = true;
}

bool PositionCounts::Metric(const MetricOptions& options, plumb::Metric& out,
                            const std::function<std::string(const Item&)>& cluster) const {
  if (!any_) return false;
  const size_t w = width_;
  std::vector<uint32_t> table;  // the clusters with an answer read, in order of first item
  std::vector<std::string> names;
  std::map<std::string, size_t> at;  // a cluster -> its row in `table`
  for (size_t i = 0; i < items_.size(); ++i) {
    const uint32_t* row = &table_[i * 2 * w];
    uint64_t seen = 0;
    for (size_t k = 0; k < w; ++k) seen += row[k];
    if (seen == 0) continue;
    size_t r = names.size();
    if (!cluster) {
      names.push_back(items_[i].id);
      table.resize(table.size() + 2 * w);
    } else {
      std::string name = cluster(items_[i]);
      auto [it, fresh] = at.emplace(name, names.size());
      r = it->second;
      if (fresh) {
        names.push_back(std::move(name));
        table.resize(table.size() + 2 * w);
      }
    }
    for (size_t k = 0; k < 2 * w; ++k) table[r * 2 * w + k] += row[k];
  }
  // Column-major (a column per position, chosen then aligned), so that every resample's sums
  // are 2 x width dot products with the draw counts, which the compiler vectorizes.
  const size_t rows = names.size();
  std::vector<int32_t> columns(2 * w * rows);
  int64_t largest = 0;
  for (size_t i = 0; i < rows; ++i) {
    for (size_t k = 0; k < 2 * w; ++k) {
      columns[k * rows + i] = static_cast<int32_t>(table[i * 2 * w + k]);
      largest = std::max<int64_t>(largest, table[i * 2 * w + k]);
    }
  }
  // A resample draws `rows` clusters in all, so no sum exceeds rows x the largest count: when
  // that fits in 32 bits the sums are taken in 32-bit integers (twice the lanes).
  const bool narrow = static_cast<int64_t>(rows) * largest < (int64_t{1} << 31);
  // Counts chosen and aligned per position over the clusters drawn counts[i] times.
  auto sums = [columns = std::move(columns), rows, w, narrow](const std::vector<int>& counts,
                                                              std::vector<int64_t>& c,
                                                              std::vector<int64_t>& a) {
    c.assign(w, 0);
    a.assign(w, 0);
    const int* draws = counts.data();
    for (size_t k = 0; k < 2 * w; ++k) {
      const int32_t* col = &columns[k * rows];
      int64_t s = 0;
      if (narrow) {
        int32_t s32 = 0;
        for (size_t i = 0; i < rows; ++i) s32 += draws[i] * col[i];
        s = s32;
      } else {
        for (size_t i = 0; i < rows; ++i) s += static_cast<int64_t>(draws[i]) * col[i];
      }
      (k < w ? c[k] : a[k - w]) = s;
    }
  };
  // The resamples need only the index (PositionBiasOf's, without its chi-square test).
  out = BootstrapMetric(
      "position_bias", "", names,
      [sums](const std::vector<int>& counts) -> std::optional<double> {
        std::vector<int64_t> c, a;
        sums(counts, c, a);
        int64_t total = 0, aligned = 0;
        size_t most = 0;
        for (size_t k = 0; k < c.size(); ++k) {
          total += c[k];
          aligned += a[k];
          if (c[k] > c[most]) most = k;
        }
        if (aligned == 0) return std::nullopt;
        if (total == 0) return 0.0;
        return 100 * (static_cast<double>(c[most]) / static_cast<double>(total) -
                      static_cast<double>(a[most]) / static_cast<double>(aligned));
      },
      options);
  std::vector<int64_t> chosen, aligned;
  sums(std::vector<int>(names.size(), 1), chosen, aligned);
  PositionBias full = PositionBiasOf(chosen, std::vector<double>(aligned.begin(), aligned.end()));
  out.details["chosen"] = full.chosen;
  out.details["expected_share"] = full.expected_share;
  out.details["most_chosen"] = full.most_chosen;
  out.details["chi_square"] = full.test.statistic;
  out.details["df"] = full.test.df;
  out.details["p_value"] = full.test.p_value;
  return true;
}

}  // namespace plumb::suites
