// The stability metrics of a perturbation grid (see stability_metrics.h).
#include "suites/stability_metrics.h"

#include <fmt/format.h>

#include <algorithm>

#include "plumb/stability.h"

namespace plumb::suites {

StabilityMetrics::StabilityMetrics(const std::vector<Item>& items,
                                   std::vector<std::string> variants, std::string primary,
                                   const MetricOptions& options)
    : items_(items),
      variants_(std::move(variants)),
      primary_(std::move(primary)),
      options_(options) {}

void StabilityMetrics::Add(size_t item, int epoch, bool aligned, int chosen) {
  const Json& f = items_[item].fields;
  if (!f.contains("variant") || !f.contains("base")) return;
  const size_t v = f["variant"].get<size_t>();
  if (v >= variants_.size()) return;
  const std::string base = f["base"].get<std::string>();
  auto [it, fresh] = base_index_.emplace(base, bases_.size());
  if (fresh) {
    bases_.push_back(base);
    rates_.emplace_back(variants_.size());
  }
  Rate& r = rates_[it->second][v];
  r.n++;
  r.k += aligned ? 1 : 0;
  std::vector<int>& c = chosen_[{it->second, epoch}];
  if (c.empty()) c.assign(variants_.size(), -2);
  c[v] = chosen;
}

void StabilityMetrics::Finish(std::vector<Metric>& out) const {
  if (bases_.empty()) return;
  const size_t nv = variants_.size();
  // The primary rate under each variant (clusters: the file's items).
  for (size_t v = 0; v < nv; ++v) {
    std::vector<Cluster> clusters;
    for (size_t b = 0; b < bases_.size(); ++b) {
      if (rates_[b][v].n > 0) clusters.push_back(Cluster{rates_[b][v].k, rates_[b][v].n, bases_[b]});
    }
    out.push_back(ProportionMetric(primary_, variants_[v], clusters, options_));
  }
  // Items answered under every variant: the paired comparisons are over them.
  std::vector<size_t> complete;
  for (size_t b = 0; b < bases_.size(); ++b) {
    bool all = true;
    for (size_t v = 0; v < nv; ++v) all = all && rates_[b][v].n > 0;
    if (all) complete.push_back(b);
  }
  if (complete.empty()) return;
  std::vector<std::string> names;
  std::vector<std::vector<Rate>> rates;
  std::vector<std::vector<double>> outcomes;
  for (size_t b : complete) {
    names.push_back(bases_[b]);
    rates.push_back(rates_[b]);
    std::vector<double> row;
    for (const Rate& r : rates_[b]) row.push_back(static_cast<double>(r.k) / static_cast<double>(r.n));
    outcomes.push_back(std::move(row));
  }
  // variant_spread: the largest minus the smallest variant rate (points).
  Metric spread = BootstrapMetric(
      "variant_spread", "", names,
      [rates](const std::vector<int>& counts) -> std::optional<double> {
        std::vector<double> k(rates[0].size()), n(rates[0].size());
        for (size_t i = 0; i < rates.size(); ++i) {
          for (size_t v = 0; v < k.size(); ++v) {
            k[v] += counts[i] * static_cast<double>(rates[i][v].k);
            n[v] += counts[i] * static_cast<double>(rates[i][v].n);
          }
        }
        double lo = 101, hi = -1;
        for (size_t v = 0; v < k.size(); ++v) {
          if (n[v] == 0) return std::nullopt;
          lo = std::min(lo, 100 * k[v] / n[v]);
          hi = std::max(hi, 100 * k[v] / n[v]);
        }
        return hi - lo;
      },
      options_);
  SpreadTest test = VariantSpreadTest(outcomes, kSpreadPermutations, options_.seed);
  spread.details["p_value"] = test.p_value;
  spread.details["permutations"] = test.permutations;
  spread.details["verdict"] =
      test.p_value < kSpreadAlpha
          ? "the presentation changes the score beyond sampling noise"
          : "stable: the differences between variants are within sampling noise";
  out.push_back(std::move(spread));
  // consistency: items whose outcome (the majority over epochs) is the same in every variant.
  std::vector<Cluster> consistent;
  for (size_t i = 0; i < outcomes.size(); ++i) {
    bool first = outcomes[i][0] > 0.5;
    bool same = true;
    for (double o : outcomes[i]) same = same && (o > 0.5) == first;
    consistent.push_back(Cluster{same ? 1 : 0, 1, names[i]});
  }
  out.push_back(ProportionMetric("consistency", "", consistent, options_));
  // label_bias: the primary rate under letter labels minus under number labels (points), when
  // the grid has both.
  std::vector<int> letters, numbers;
  for (size_t v = 0; v < nv; ++v) {
    if (variants_[v].find("labels=letters") != std::string::npos) letters.push_back(static_cast<int>(v));
    if (variants_[v].find("labels=numbers") != std::string::npos) numbers.push_back(static_cast<int>(v));
  }
  if (!letters.empty() && !numbers.empty()) {
    out.push_back(BootstrapMetric(
        "label_bias", "", names,
        [rates, letters, numbers](const std::vector<int>& counts) -> std::optional<double> {
          double lk = 0, ln = 0, nk = 0, nn = 0;
          for (size_t i = 0; i < rates.size(); ++i) {
            for (int v : letters) {
              lk += counts[i] * static_cast<double>(rates[i][static_cast<size_t>(v)].k);
              ln += counts[i] * static_cast<double>(rates[i][static_cast<size_t>(v)].n);
            }
            for (int v : numbers) {
              nk += counts[i] * static_cast<double>(rates[i][static_cast<size_t>(v)].k);
              nn += counts[i] * static_cast<double>(rates[i][static_cast<size_t>(v)].n);
            }
          }
          if (ln == 0 || nn == 0) return std::nullopt;
          return 100 * lk / ln - 100 * nk / nn;
        },
        options_));
  }
  // choice_agreement: Fleiss' kappa of the option chosen (or none) across variants, per item
  // and epoch.
  int categories = 1;
  std::vector<std::vector<int>> subjects;
  std::vector<std::string> subject_names;
  for (const auto& [key, chosen] : chosen_) {
    if (std::find(chosen.begin(), chosen.end(), -2) != chosen.end()) continue;
    for (int c : chosen) categories = std::max(categories, c + 2);
    subjects.push_back(chosen);
    subject_names.push_back(fmt::format("{}#{}", bases_[key.first], key.second));
  }
  if (subjects.empty()) return;
  auto kappa = [subjects, categories](const std::vector<int>& counts) -> std::optional<double> {
    std::vector<std::vector<int64_t>> table;
    for (size_t i = 0; i < subjects.size(); ++i) {
      std::vector<int64_t> row(static_cast<size_t>(categories), 0);
      for (int c : subjects[i]) row[static_cast<size_t>(c + 1)]++;
      for (int r = 0; r < counts[i]; ++r) table.push_back(row);
    }
    std::optional<double> k = FleissKappa(table);
    if (!k) return std::nullopt;
    return *k;
  };
  out.push_back(BootstrapMetric("choice_agreement", "", subject_names, kappa, options_));
}

}  // namespace plumb::suites
