// A run's metrics from its stored samples: the suite kind's metrics, epoch reducers, and every
// judge grader's error rate, unscored rate and (for panels) Krippendorff's alpha.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <unordered_map>

#include "plumb/runner.h"
#include "plumb/stats.h"
#include "runner/metrics.h"

namespace plumb {

// For every judge grader seen: its error and unscored rates over the judged samples, and, when
// a panel judged them, Krippendorff's alpha between the judges. Fed one sample at a time.
class JudgeMetrics {
 public:
  void Add(const SampleRecord& s) {
    for (const auto& g : s.grades) {
      if (!g.details.value("judge_grader", false)) continue;
      Counts& c = by_grader_[g.grader];
      Cluster& e = c.errors[s.item_id];
      Cluster& u = c.unscored[s.item_id];
      e.key = u.key = s.item_id;
      e.n++, e.k += g.status == GradeStatus::kError;
      u.n++, u.k += g.status == GradeStatus::kUnscored;
      const Json& panel = g.details.value("judgments", Json::array());
      if (panel.size() < 2) continue;
      Unit unit{s.epoch, s.item_id, {}};
      for (const auto& j : panel) {
        size_t col = c.judges.emplace(j.value("judge", ""), c.judges.size()).first->second;
        if (unit.values.size() <= col) unit.values.resize(col + 1);
        if (j.value("status", "") != "scored") continue;
        if (j["value"].is_number()) {
          unit.values[col] = j["value"].get<double>();
        } else {
          c.numeric = false;
          auto code = c.label_codes.emplace(j.value("label", ""),
                                            static_cast<double>(c.label_codes.size()));
          unit.values[col] = code.first->second;
        }
      }
      c.units.push_back(std::move(unit));
    }
  }

  void Finish(const MetricOptions& options, std::vector<Metric>& out) {
    for (auto& [grader, c] : by_grader_) {
      std::string id = grader.substr(0, grader.find('@'));
      auto clusters = [](const std::map<std::string, Cluster>& by_item) {
        std::vector<Cluster> v;
        for (const auto& [_, cl] : by_item) v.push_back(cl);
        return v;
      };
      out.push_back(ProportionMetric(id + ".judge_error_rate", "", clusters(c.errors), options));
      out.push_back(ProportionMetric(id + ".unscored_rate", "", clusters(c.unscored), options));
      if (c.units.empty()) continue;
      // Units in (epoch, item) order, however the samples were read: the bootstrap's draws
      // follow that order.
      std::stable_sort(c.units.begin(), c.units.end(), [](const Unit& a, const Unit& b) {
        return a.epoch != b.epoch ? a.epoch < b.epoch : a.item_id < b.item_id;
      });
      std::vector<std::vector<std::optional<double>>> units;
      std::vector<std::string> keys;
      for (auto& u : c.units) {
        units.push_back(std::move(u.values));
        keys.push_back(fmt::format("{}#{}", u.item_id, u.epoch));
      }
      Metric alpha = AlphaMetric(id + ".judge_alpha", units, keys, c.numeric, options);
      alpha.details["judges"] = c.judges.size();
      out.push_back(alpha);
    }
  }

 private:
  struct Unit {
    int epoch;
    std::string item_id;
    std::vector<std::optional<double>> values;
  };
  struct Counts {
    std::map<std::string, Cluster> errors, unscored;  // by item
    std::vector<Unit> units;
    std::map<std::string, size_t> judges;
    std::map<std::string, double> label_codes;
    bool numeric = true;
  };
  std::map<std::string, Counts> by_grader_;
};

RunMetricsBuilder::RunMetricsBuilder(const Suite& suite, const MetricOptions& options)
    : suite_(suite),
      options_(options),
      kind_(suite.kind->StartMetrics(suite.items, options)),
      judges_(std::make_unique<JudgeMetrics>()) {
  for (size_t i = 0; i < suite.items.size(); ++i) index_[suite.items[i].id] = i;
}

RunMetricsBuilder::~RunMetricsBuilder() = default;

void RunMetricsBuilder::AddOutcome(SampleOutcome outcome) {
  ++counts_.planned;
  ++(outcome.responded ? counts_.done : counts_.error);
  epochs_ = std::max(epochs_, outcome.epoch + 1);
  kind_->Add(std::move(outcome));
}

Status RunMetricsBuilder::Add(SampleRecord&& s) {
    ++counts_.planned;
    if (s.status == "pending") {  // never finished: not an outcome
      ++counts_.pending;
      return Status();
    }
    auto it = index_.find(s.item_id);
    if (it == index_.end()) {
      return DataLoss(fmt::format("stored item '{}' is not in suite '{}' any more", s.item_id,
                                  suite_.manifest.id));
    }
    bool done = s.status == "done";
    ++(done ? counts_.done : counts_.error);
    epochs_ = std::max(epochs_, s.epoch + 1);
    judges_->Add(s);
    kind_->Add(SampleOutcome{it->second, s.epoch, done, std::move(s.grades)});
    return Status();
}

std::vector<Metric> RunMetricsBuilder::Finish() {
    std::vector<Metric> metrics = kind_->Finish();
    std::vector<std::string> reduced =
        epochs_ > 1 && reducers_ ? suite_.kind->ReducedMetrics() : std::vector<std::string>();
    size_t n = metrics.size();
    for (size_t i = 0; i < n; ++i) {
      if (!metrics[i].category.empty() ||
          std::find(reduced.begin(), reduced.end(), metrics[i].name) == reduced.end())
        continue;
      for (auto& r : ReducerMetrics(metrics[i], options_)) metrics.push_back(std::move(r));
    }
    judges_->Finish(options_, metrics);
    return metrics;
}

Result<std::vector<Metric>> ComputeMetrics(const Suite& suite,
                                           const std::vector<SampleRecord>& samples,
                                           const MetricOptions& options) {
  RunMetricsBuilder builder(suite, options);
  for (const auto& s : samples) PLUMB_RETURN_IF_ERROR(builder.Add(SampleRecord(s)));
  return builder.Finish();
}

Result<std::vector<Metric>> ComputeRunMetrics(const Suite& suite, const Store& store,
                                              int64_t run_id, const MetricOptions& options,
                                              SampleCounts* counts) {
  RunMetricsBuilder builder(suite, options);
  Status added;
  PLUMB_RETURN_IF_ERROR(store.ScanSamples(run_id, SampleScan{}, [&](SampleRecord&& s) {
    added = builder.Add(std::move(s));
    return added.ok();
  }));
  PLUMB_RETURN_IF_ERROR(added);
  if (counts != nullptr) *counts = builder.counts();
  return builder.Finish();
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
