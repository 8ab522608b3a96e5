// plumb compare: two runs of a suite, metric by metric, paired on the items both answered.
#include "plumb/compare.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <cmath>
#include <map>

#include "plumb/report.h"
#include "plumb/runner.h"

namespace plumb {
namespace {

// Flips listed per metric in text and Markdown; JSON lists them all.
constexpr size_t kFlipsShown = 10;

std::string Label(const MetricComparison& m) {
  return m.category.empty() ? m.name : fmt::format("{} [{}]", m.name, m.category);
}

std::string WithInterval(const Metric& m) {
  std::string ci = FormatInterval(m);
  return ci.empty() ? FormatValue(m.value) : FormatValue(m.value) + " " + ci;
}

std::string Signed(const std::optional<double>& v) { return v ? fmt::format("{:+.2f}", *v) : "-"; }

std::string DiffInterval(const PairedComparison& p) {
  return p.ci ? fmt::format("[{:+.2f}, {:+.2f}]", p.ci->low, p.ci->high) : "";
}

std::string PValue(const std::optional<double>& p) {
  if (!p) return "-";
  return *p < 0.0001 ? std::string("<0.0001") : fmt::format("{:.4f}", *p);
}

std::string Test(const PairedComparison& p) {
  if (p.test == "mcnemar-exact") {
    return fmt::format("McNemar exact ({} vs {} discordant)", p.a_only_successes,
                       p.b_only_successes);
  }
  return p.test == "paired-bootstrap" ? "paired bootstrap" : "-";
}

std::string Rate(const Cluster& c) { return fmt::format("{}/{}", c.k, c.n); }

std::string RunName(const RunRecord& r) { return fmt::format("run {} ({})", r.id, r.model_spec); }

Json ClusterJson(const Cluster& c) { return Json{{"k", c.k}, {"n", c.n}}; }

// The flips of one metric as lines, at most kFlipsShown.
std::string FlipLines(const MetricComparison& m, const std::string& bullet) {
  if (m.flips.empty()) return "";
  int worse = 0;
  for (const auto& f : m.flips) worse += f.b.k * f.a.n < f.a.k * f.b.n;
  std::string out =
      fmt::format("{}: {} of {} shared items changed ({} lower, {} higher)\n", Label(m),
                  m.flips.size(), m.paired.shared, worse, m.flips.size() - worse);
  for (size_t i = 0; i < m.flips.size() && i < kFlipsShown; ++i) {
    const Flip& f = m.flips[i];
    out += fmt::format("{}{}: {} -> {}\n", bullet, f.key, Rate(f.a), Rate(f.b));
  }
  if (m.flips.size() > kFlipsShown) {
    out += fmt::format("{}... and {} more (--format json lists them all)\n", bullet,
                       m.flips.size() - kFlipsShown);
  }
  return out;
}

}  // namespace

Result<RunMetrics> RecomputeRunMetrics(const Store& store, const Suite& suite, int64_t run_id,
                                       const MetricOptions& options) {
  RunMetrics out;
  PLUMB_ASSIGN_OR_RETURN(out.run, store.GetRun(run_id));
  if (out.run.suite_id != suite.manifest.id) {
    return InvalidArgument(fmt::format("run {} is of suite '{}', not '{}'", run_id,
                                       out.run.suite_id, suite.manifest.id));
  }
  PLUMB_ASSIGN_OR_RETURN(auto items, store.GetItems(run_id));
  Suite planned{suite.manifest, std::move(items), suite.kind};
  SampleCounts counts;
  PLUMB_ASSIGN_OR_RETURN(out.metrics, ComputeRunMetrics(planned, store, run_id, options, &counts));
  if (out.run.status != "completed") {
    out.notes.push_back(fmt::format(
        "run {} is {} ({} of {} samples never finished): its metrics cover what finished", run_id,
        out.run.status, counts.pending, counts.planned));
  }
  PLUMB_ASSIGN_OR_RETURN(auto stored, store.GetMetrics(run_id));
  for (const auto& s : stored) {
    for (const auto& m : out.metrics) {
      if (m.name != s.name || m.category != s.category || !m.value || !s.value) continue;
      if (std::abs(*m.value - *s.value) > 1e-6) {
        out.notes.push_back(
            fmt::format("run {}: {} recomputes to {:.2f} with the current suite '{}' but was "
                        "stored as {:.2f}: the "
                        "suite's scoring changed since the run",
                        run_id, s.category.empty() ? s.name : s.name + " [" + s.category + "]",
                        *m.value, suite.manifest.id, *s.value));
      }
    }
  }
  return out;
}

MetricComparison CompareMetrics(const Metric& a, const Metric& b, const MetricOptions& options) {
  MetricComparison c;
  c.name = b.name;
  c.category = b.category;
  c.a = a;
  c.b = b;
  c.paired = ComparePaired(*c.a.model, *c.b.model, options);
  const auto& pa = c.a.model->proportions;
  const auto& pb = c.b.model->proportions;
  if (!pa.empty() && !pb.empty()) {
    std::map<std::string_view, const Cluster*> by_key;
    for (const auto& x : pa) by_key.emplace(x.key, &x);
    for (const auto& y : pb) {
      auto x = by_key.find(y.key);
      if (x != by_key.end() && x->second->k * y.n != y.k * x->second->n)
        c.flips.push_back(Flip{y.key, *x->second, y});
    }
  }
  return c;
}

Result<RunComparison> CompareRuns(const Store& store, const Suite& suite, int64_t a, int64_t b,
                                  bool allow_suite_change, const MetricOptions& options) {
  PLUMB_ASSIGN_OR_RETURN(RunRecord ra, store.GetRun(a));
  PLUMB_ASSIGN_OR_RETURN(RunRecord rb, store.GetRun(b));
  if (ra.suite_id != rb.suite_id) {
    return InvalidArgument(fmt::format(
        "run {} is of suite '{}' and run {} of suite '{}': only runs of one suite can be compared",
        a, ra.suite_id, b, rb.suite_id));
  }
  RunComparison out;
  if (ra.suite_hash != rb.suite_hash) {
    if (!allow_suite_change) {
      return InvalidArgument(
          fmt::format("runs {} and {} used different content of suite '{}' (hash {} vs {}): items "
                      "or their keys may have "
                      "changed, so differences may not be the model's; pass --allow-suite-change "
                      "to compare the items "
                      "both answered anyway",
                      a, b, ra.suite_id, ra.suite_hash.substr(0, 12), rb.suite_hash.substr(0, 12)));
    }
    out.notes.push_back(fmt::format(
        "the runs used different content of suite '{}' (hash {} vs {}); only items both "
        "answered are compared",
        ra.suite_id, ra.suite_hash.substr(0, 12), rb.suite_hash.substr(0, 12)));
  }
  PLUMB_ASSIGN_OR_RETURN(RunMetrics ma, RecomputeRunMetrics(store, suite, a, options));
  PLUMB_ASSIGN_OR_RETURN(RunMetrics mb, RecomputeRunMetrics(store, suite, b, options));
  out.notes.insert(out.notes.end(), ma.notes.begin(), ma.notes.end());
  out.notes.insert(out.notes.end(), mb.notes.begin(), mb.notes.end());
  out.a = std::move(ma.run);
  out.b = std::move(mb.run);
  out.higher_is_better_primary = out.b.higher_is_better;
  std::map<std::pair<std::string, std::string>, const Metric*> in_a;
  for (const auto& m : ma.metrics) {
    if (m.model) in_a[{m.name, m.category}] = &m;
  }
  for (const auto& m : mb.metrics) {
    auto it = in_a.find({m.name, m.category});
    if (!m.model || it == in_a.end()) continue;
    MetricComparison c = CompareMetrics(*it->second, m, options);
    out.metrics.push_back(std::move(c));
  }
  // The primary metric first, then the whole suite's metrics, then categories (stable).
  const std::string primary = out.b.primary_metric;
  std::stable_sort(out.metrics.begin(), out.metrics.end(),
                   [&](const MetricComparison& x, const MetricComparison& y) {
                     auto rank = [&](const MetricComparison& m) {
                       return m.category.empty() ? (m.name == primary ? 0 : 1) : 2;
                     };
                     return rank(x) < rank(y);
                   });
  return out;
}

Result<std::string> FormatComparison(const RunComparison& c, const std::string& format) {
  if (format == "json") {
    auto run = [](const RunRecord& r) {
      return Json{{"id", r.id},
                  {"model", r.model_spec},
                  {"status", r.status},
                  {"suite_hash", r.suite_hash},
                  {"finished_at", r.finished_at}};
    };
    Json metrics = Json::array();
    for (const auto& m : c.metrics) {
      const PairedComparison& p = m.paired;
      auto opt = [](const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); };
      Json j = {{"name", m.name},
                {"category", m.category},
                {"baseline", MetricToJson(m.a)},
                {"candidate", MetricToJson(m.b)},
                {"shared", p.shared},
                {"only_baseline", p.only_a},
                {"only_candidate", p.only_b},
                {"baseline_on_shared", opt(p.a)},
                {"candidate_on_shared", opt(p.b)},
                {"diff", opt(p.diff)},
                {"ci_low", p.ci ? Json(p.ci->low) : Json(nullptr)},
                {"ci_high", p.ci ? Json(p.ci->high) : Json(nullptr)},
                {"p_value", opt(p.p_value)},
                {"test", p.test}};
      if (p.test == "mcnemar-exact") {
        j["discordant"] = {{"baseline_only", p.a_only_successes},
                           {"candidate_only", p.b_only_successes}};
      }
      if (!m.a.model->proportions.empty()) {
        Json flips = Json::array();
        for (const auto& f : m.flips)
          flips.push_back(
              {{"item", f.key}, {"baseline", ClusterJson(f.a)}, {"candidate", ClusterJson(f.b)}});
        j["flips"] = flips;
      }
      metrics.push_back(j);
    }
    return DumpJson(Json{{"suite", c.b.suite_id},
                         {"baseline", run(c.a)},
                         {"candidate", run(c.b)},
                         {"primary_metric", c.b.primary_metric},
                         {"higher_is_better", c.b.higher_is_better},
                         {"notes", c.notes},
                         {"metrics", metrics}},
                    2) +
           "\n";
  }
  if (format != "text" && format != "md") {
    return InvalidArgument(fmt::format("unknown format '{}' (use text, md or json)", format));
  }
  bool md = format == "md";
  std::string out =
      fmt::format("{}compare {}@{}: {} (baseline) -> {} (candidate)\n\n", md ? "### " : "",
                  c.b.suite_id, c.b.suite_version, RunName(c.a), RunName(c.b));
  for (const auto& n : c.notes) out += (md ? "> note: " : "note: ") + n + "\n";
  if (!c.notes.empty()) out += "\n";
  std::vector<std::vector<std::string>> rows = {{"metric", fmt::format("run {}", c.a.id),
                                                 fmt::format("run {}", c.b.id), "change", "95% CI",
                                                 "p", "shared", "test"}};
  for (const auto& m : c.metrics) {
    rows.push_back({Label(m), WithInterval(m.a), WithInterval(m.b), Signed(m.paired.diff),
                    DiffInterval(m.paired), PValue(m.paired.p_value),
                    std::to_string(m.paired.shared), Test(m.paired)});
  }
  if (md) {
    for (size_t r = 0; r < rows.size(); ++r) {
      out += "| " + fmt::format("{}", fmt::join(rows[r], " | ")) + " |\n";
      if (r == 0)
        out +=
            fmt::format("|{}|\n", fmt::join(std::vector<std::string>(rows[0].size(), "---"), "|"));
    }
  } else {
    std::vector<size_t> width(rows[0].size(), 0);
    for (const auto& r : rows) {
      for (size_t i = 0; i < r.size(); ++i) width[i] = std::max(width[i], r[i].size());
    }
    for (const auto& r : rows) {
      std::string line;
      for (size_t i = 0; i < r.size(); ++i) line += fmt::format("{:<{}}  ", r[i], width[i]);
      while (!line.empty() && line.back() == ' ') line.pop_back();
      out += line + "\n";
    }
  }
  out += fmt::format(
      "\nchange = run {} minus run {} on the items both answered; for {}, {} is better.\n", c.b.id,
      c.a.id, c.b.primary_metric, c.b.higher_is_better ? "higher" : "lower");
  std::string flips;
  for (const auto& m : c.metrics) {
    if (m.category.empty()) flips += FlipLines(m, md ? "- " : "  ");
  }
  if (!flips.empty()) out += "\nitems whose rate changed:\n" + flips;
  return out;
}

}  // namespace plumb
