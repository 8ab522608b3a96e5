// A run's metrics from its stored samples: the suite kind's metrics, epoch reducers, and every
// judge grader's error rate, unscored rate and (for panels) Krippendorff's alpha.
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "plumb/runner.h"
#include "plumb/stats.h"

namespace plumb {
namespace {

// For every judge grader seen: its error and unscored rates over the judged samples, and, when
// a panel judged them, Krippendorff's alpha between the judges.
void AddJudgeMetrics(const std::vector<SampleRecord>& samples, const MetricOptions& options,
                     std::vector<Metric>& out) {
  struct Counts {
    std::map<std::string, Cluster> errors, unscored;  // by item
    std::vector<std::vector<std::optional<double>>> units;
    std::vector<std::string> unit_keys;  // item#epoch
    std::map<std::string, size_t> judges;
    std::map<std::string, double> label_codes;
    bool numeric = true;
  };
  std::map<std::string, Counts> by_grader;
  for (const auto& s : samples) {
    for (const auto& g : s.grades) {
      if (!g.details.value("judge_grader", false)) continue;
      Counts& c = by_grader[g.grader];
      Cluster& e = c.errors[s.item_id];
      Cluster& u = c.unscored[s.item_id];
      e.key = u.key = s.item_id;
      e.n++, e.k += g.status == GradeStatus::kError;
      u.n++, u.k += g.status == GradeStatus::kUnscored;
      const Json& panel = g.details.value("judgments", Json::array());
      if (panel.size() < 2) continue;
      std::vector<std::optional<double>> unit;
      for (const auto& j : panel) {
        size_t col = c.judges.emplace(j.value("judge", ""), c.judges.size()).first->second;
        if (unit.size() <= col) unit.resize(col + 1);
        if (j.value("status", "") != "scored") continue;
        if (j["value"].is_number()) {
          unit[col] = j["value"].get<double>();
        } else {
          c.numeric = false;
          auto code = c.label_codes.emplace(j.value("label", ""),
                                            static_cast<double>(c.label_codes.size()));
          unit[col] = code.first->second;
        }
      }
      c.units.push_back(std::move(unit));
      c.unit_keys.push_back(fmt::format("{}#{}", s.item_id, s.epoch));
    }
  }
  for (auto& [grader, c] : by_grader) {
    std::string id = grader.substr(0, grader.find('@'));
    auto clusters = [](const std::map<std::string, Cluster>& by_item) {
      std::vector<Cluster> v;
      for (const auto& [_, cl] : by_item) v.push_back(cl);
      return v;
    };
    out.push_back(ProportionMetric(id + ".judge_error_rate", "", clusters(c.errors), options));
    out.push_back(ProportionMetric(id + ".unscored_rate", "", clusters(c.unscored), options));
    if (c.units.empty()) continue;
    Metric alpha = AlphaMetric(id + ".judge_alpha", c.units, c.unit_keys, c.numeric, options);
    alpha.details["judges"] = c.judges.size();
    out.push_back(alpha);
  }
}

}  // namespace

Result<std::vector<Metric>> ComputeMetrics(const Suite& suite,
                                           const std::vector<SampleRecord>& samples,
                                           const MetricOptions& options) {
  std::map<std::string, size_t> index;
  for (size_t i = 0; i < suite.items.size(); ++i) index[suite.items[i].id] = i;
  std::vector<SampleOutcome> outcomes;
  for (const auto& s : samples) {
    if (s.status == "pending") continue;  // never finished: not an outcome
    auto it = index.find(s.item_id);
    if (it == index.end()) {
      return DataLoss(fmt::format("stored item '{}' is not in suite '{}' any more", s.item_id,
                                  suite.manifest.id));
    }
    outcomes.push_back(SampleOutcome{it->second, s.epoch, s.status == "done", s.grades});
  }
  std::vector<Metric> metrics = suite.kind->Metrics(suite.items, outcomes, options);
  int epochs = 0;
  for (const auto& o : outcomes) epochs = std::max(epochs, o.epoch + 1);
  std::vector<std::string> reduced =
      epochs > 1 ? suite.kind->ReducedMetrics() : std::vector<std::string>();
  size_t n = metrics.size();
  for (size_t i = 0; i < n; ++i) {
    if (!metrics[i].category.empty() ||
        std::find(reduced.begin(), reduced.end(), metrics[i].name) == reduced.end())
      continue;
    for (auto& r : ReducerMetrics(metrics[i], options)) metrics.push_back(std::move(r));
  }
  AddJudgeMetrics(samples, options, metrics);
  return metrics;
}

MetricOptions MetricOptionsOfRun(const RunRecord& run) {
  MetricOptions o;
  o.seed = run.seed;
  const Json& r =
      run.settings.is_object() ? run.settings.value("bootstrap_resamples", Json()) : Json();
  if (r.is_number_integer()) o.resamples = r.get<int>();
  return o;
}

}  // namespace plumb
