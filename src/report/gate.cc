// plumb gate: a release verdict from paired comparisons. Each check tests two one-sided
// hypotheses against the non-inferiority margin m (in the metric's good direction, d is the
// candidate's change):
//   regression:        H0: d >= -m  vs  H1: d < -m   (the candidate is worse by more than m)
//   non-inferiority:   H0: d <= -m  vs  H1: d > -m   (the candidate is no worse than m)
// Both families get Holm's correction across every check; a check is a regression when the
// first rejects, a pass when the second does, and inconclusive when neither can.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>
#include <set>

#include "plumb/compare.h"
#include "plumb/json.h"
#include "plumb/report.h"
#include "plumb/say_do.h"
#include "plumb/text.h"
#include "report/html.h"

namespace plumb {
namespace {

std::string CheckName(const GateCheck& c) {
  return c.category.empty() ? c.metric : fmt::format("{} [{}]", c.metric, c.category);
}

std::string P(double p) { return p < 0.0001 ? std::string("<0.0001") : fmt::format("{:.4f}", p); }

std::string Change(const GateCheck& c) {
  const PairedComparison& p = c.comparison.paired;
  if (!p.diff) return "-";
  std::string out = fmt::format("{:+.2f}", *p.diff);
  if (p.ci) out += fmt::format(" [{:+.2f}, {:+.2f}]", p.ci->low, p.ci->high);
  return out;
}

Json OptJson(const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); }

}  // namespace

Result<GatePolicy> LoadGatePolicy(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec)) {
    return NotFound(fmt::format("gate policy '{}' does not exist (see --policy)", path.string()));
  }
  PLUMB_ASSIGN_OR_RETURN(Document doc, LoadYamlFile(path));
  if (!doc.value.is_object())
    return InvalidArgument(path.string() + ":1: a gate policy must be a mapping");
  GatePolicy p;
  p.source = path.string();
  FieldReader top(doc.value, doc.source);
  PLUMB_ASSIGN_OR_RETURN(auto alpha, top.OptNumber("alpha"));
  if (alpha && (*alpha <= 0 || *alpha > 0.5))
    return top.Error("alpha", "must be above 0 and at most 0.5");
  if (alpha) p.alpha = *alpha;
  PLUMB_ASSIGN_OR_RETURN(auto correction, top.OptString("correction"));
  if (correction && *correction != "holm" && *correction != "none")
    return top.Error("correction", "must be 'holm' or 'none'");
  if (correction) p.holm = *correction == "holm";
  PLUMB_ASSIGN_OR_RETURN(auto inconclusive, top.OptString("inconclusive"));
  if (inconclusive && *inconclusive != "fail" && *inconclusive != "pass") {
    return top.Error("inconclusive", "must be 'fail' or 'pass'");
  }
  if (inconclusive) p.inconclusive_fails = *inconclusive == "fail";
  if (const Json* metrics = top.Get("metrics")) {
    if (!metrics->is_array() || metrics->empty())
      return top.Error("metrics", "must be a non-empty list of metrics");
    p.metrics.clear();
    for (size_t i = 0; i < metrics->size(); ++i) {
      const Json& entry = (*metrics)[i];
      std::string pointer = fmt::format("/metrics/{}", i);
      FieldReader m(entry, doc.source, pointer, fmt::format("metrics[{}]", i));
      if (!entry.is_object()) {
        return InvalidArgument(fmt::format("{}: metrics[{}] must be a mapping with at least 'name'",
                                           doc.source.Where(pointer), i));
      }
      GateMetricPolicy g;
      g.where = doc.source.Where(pointer);
      PLUMB_ASSIGN_OR_RETURN(g.name, m.String("name"));
      PLUMB_ASSIGN_OR_RETURN(auto category, m.OptString("category"));
      g.category = category.value_or("");
      PLUMB_ASSIGN_OR_RETURN(auto suite, m.OptString("suite"));
      g.suite = suite.value_or("");
      PLUMB_ASSIGN_OR_RETURN(auto stated, m.OptString("stated"));
      g.stated = stated.value_or("");
      if (IsSayDoMetric(g.name) && (g.suite.empty() || g.stated.empty())) {
        return m.Error("name", fmt::format("say-do metric '{}' needs 'suite:' (the agentic suite) "
                                           "and 'stated:' (the multiple-choice suite it enacts)",
                                           g.name));
      }
      if (!g.stated.empty() && !IsSayDoMetric(g.name)) {
        return m.Error("stated",
                       "only say-do metrics (say_do_agreement, say_do_kappa, "
                       "said_aligned_acted_misaligned, said_misaligned_acted_aligned) "
                       "take 'stated:'");
      }
      PLUMB_ASSIGN_OR_RETURN(auto direction, m.OptString("direction"));
      if (direction && *direction != "higher" && *direction != "lower") {
        return m.Error("direction", "must be 'higher' (higher is better) or 'lower'");
      }
      if (direction) g.higher_is_better = *direction == "higher";
      PLUMB_ASSIGN_OR_RETURN(auto margin, m.OptNumber("margin"));
      if (margin && (*margin < 0 || *margin > 100))
        return m.Error("margin", "must be between 0 and 100 (points)");
      if (margin) g.margin = *margin;
      PLUMB_RETURN_IF_ERROR(m.Finish());
      p.metrics.push_back(std::move(g));
    }
  }
  PLUMB_RETURN_IF_ERROR(top.Finish());
  return p;
}

Status AddSayDoComparisons(const Store& store, const GatePolicy& policy,
                           std::vector<RunComparison>& comparisons, const MetricOptions& options) {
  std::set<std::pair<std::string, std::string>> done;
  for (const auto& pm : policy.metrics) {
    if (pm.stated.empty() || !done.insert({pm.stated, pm.suite}).second) continue;
    RunComparison* enacted = nullptr;
    const RunComparison* stated = nullptr;
    for (auto& c : comparisons) {
      if (c.b.suite_id == pm.suite) enacted = &c;
      if (c.b.suite_id == pm.stated) stated = &c;
    }
    if (enacted == nullptr || stated == nullptr) {
      return InvalidArgument(fmt::format(
          "{}: say-do metric '{}' needs a --candidate run of suite '{}' and one of suite '{}'",
          pm.where.empty() ? policy.source : pm.where, pm.name, pm.stated, pm.suite));
    }
    PLUMB_ASSIGN_OR_RETURN(SayDoResult before,
                           ComputeSayDo(store, stated->a.id, enacted->a.id, options));
    PLUMB_ASSIGN_OR_RETURN(SayDoResult after,
                           ComputeSayDo(store, stated->b.id, enacted->b.id, options));
    for (const auto& m : after.metrics) {
      for (const auto& b : before.metrics) {
        if (b.name != m.name || b.category != m.category || !b.model || !m.model) continue;
        MetricComparison c = CompareMetrics(b, m, options);
        c.higher_is_better = SayDoHigherIsBetter(m.name);
        enacted->metrics.push_back(std::move(c));
      }
    }
    enacted->notes.push_back(fmt::format(
        "say-do metrics pair runs {} and {} (baseline) and runs {} and {} (candidate) of '{}' "
        "and '{}'",
        stated->a.id, enacted->a.id, stated->b.id, enacted->b.id, pm.stated, pm.suite));
  }
  return Status();
}

Result<GateResult> EvaluateGate(const std::vector<RunComparison>& comparisons,
                                const GatePolicy& policy) {
  GateResult r;
  r.policy = policy;
  for (const auto& c : comparisons) {
    for (const auto& n : c.notes) r.notes.push_back(fmt::format("{}: {}", c.b.suite_id, n));
    for (const auto& pm : policy.metrics) {
      if (!pm.suite.empty() && pm.suite != c.b.suite_id) continue;
      std::string where = pm.where.empty() ? policy.source : pm.where;
      std::string name = pm.name == "primary" ? c.b.primary_metric : pm.name;
      const MetricComparison* found = nullptr;
      for (const auto& m : c.metrics) {
        if (m.name == name && m.category == pm.category) found = &m;
      }
      if (found == nullptr) {
        std::vector<std::string> known;
        for (const auto& m : c.metrics) {
          if (m.category.empty()) known.push_back(m.name);
        }
        return InvalidArgument(
            fmt::format("{}: runs {} and {} of suite '{}' do not both report metric '{}'{} (they "
                        "report: {}); restrict the entry "
                        "with 'suite:' if it is meant for another suite",
                        where, c.a.id, c.b.id, c.b.suite_id, name,
                        pm.category.empty() ? "" : " in category '" + pm.category + "'",
                        fmt::join(known, ", ")));
      }
      GateCheck k;
      k.suite_id = c.b.suite_id;
      k.baseline_run = c.a.id;
      k.candidate_run = c.b.id;
      k.metric = name;
      k.category = pm.category;
      k.margin = pm.margin;
      if (pm.higher_is_better) {
        k.higher_is_better = *pm.higher_is_better;
      } else if (found->higher_is_better) {
        k.higher_is_better = *found->higher_is_better;
      } else if (name == c.b.primary_metric) {
        k.higher_is_better = c.b.higher_is_better;
      } else {
        return InvalidArgument(
            fmt::format("{}: metric '{}' needs 'direction: higher' or 'direction: lower' (only the "
                        "primary metric's direction is known)",
                        where, name));
      }
      k.comparison = *found;
      const PairedComparison& p = found->paired;
      k.test = p.test == "mcnemar-exact" && k.margin > 0 ? "tango-score" : p.test;
      if (p.diff) {
        k.p_regression = k.higher_is_better ? PBelow(p, -k.margin) : PAbove(p, k.margin);
        k.p_noninferiority = k.higher_is_better ? PAbove(p, -k.margin) : PBelow(p, k.margin);
      }
      r.checks.push_back(std::move(k));
    }
  }
  std::vector<double> reg, ni;
  for (const auto& k : r.checks) reg.push_back(k.p_regression), ni.push_back(k.p_noninferiority);
  if (policy.holm) reg = HolmAdjust(reg), ni = HolmAdjust(ni);
  bool regression = false, inconclusive = false;
  for (size_t i = 0; i < r.checks.size(); ++i) {
    GateCheck& k = r.checks[i];
    k.p_regression_adjusted = reg[i];
    k.p_noninferiority_adjusted = ni[i];
    const PairedComparison& p = k.comparison.paired;
    std::string worse = k.higher_is_better ? "lower" : "higher";
    if (!p.diff) {
      k.verdict = "inconclusive";
      k.reason = fmt::format("no item has a value in both runs ({} shared)", p.shared);
    } else if (k.p_regression_adjusted < policy.alpha) {
      k.verdict = "regression";
      k.reason =
          fmt::format("{} by more than the margin of {:g} points (p = {}{})", worse, k.margin,
                      P(k.p_regression_adjusted), policy.holm ? ", Holm-adjusted" : "");
    } else if (k.p_noninferiority_adjusted < policy.alpha) {
      k.verdict = "pass";
      k.reason = fmt::format("not {} by more than {:g} points (p = {}{})", worse, k.margin,
                             P(k.p_noninferiority_adjusted), policy.holm ? ", Holm-adjusted" : "");
    } else {
      k.verdict = "inconclusive";
      k.reason = fmt::format(
          "{} shared items cannot tell a change within {:g} points from a larger one; more items "
          "or epochs would decide",
          p.shared, k.margin);
    }
    regression = regression || k.verdict == "regression";
    inconclusive = inconclusive || k.verdict == "inconclusive";
  }
  if (regression) {
    r.verdict = "regression";
    r.exit_code = 1;
  } else if (inconclusive) {
    r.verdict = "inconclusive";
    r.exit_code = policy.inconclusive_fails ? 4 : 0;
  } else {
    r.verdict = "pass";
  }
  return r;
}

Result<std::string> FormatGate(const GateResult& r, const std::string& format) {
  const GatePolicy& p = r.policy;
  std::string policy_line = fmt::format(
      "policy: {} (alpha {:g}, {}, inconclusive {})", p.source, p.alpha,
      p.holm
          ? fmt::format("Holm across {} check{}", r.checks.size(), r.checks.size() == 1 ? "" : "s")
          : "no correction",
      p.inconclusive_fails ? "fails" : "passes");
  if (format == "json") {
    Json checks = Json::array();
    for (const auto& k : r.checks) {
      const PairedComparison& pc = k.comparison.paired;
      checks.push_back({{"suite", k.suite_id},
                        {"baseline_run", k.baseline_run},
                        {"candidate_run", k.candidate_run},
                        {"metric", k.metric},
                        {"category", k.category},
                        {"direction", k.higher_is_better ? "higher" : "lower"},
                        {"margin", k.margin},
                        {"baseline", MetricToJson(k.comparison.a)},
                        {"candidate", MetricToJson(k.comparison.b)},
                        {"shared", pc.shared},
                        {"diff", OptJson(pc.diff)},
                        {"ci_low", pc.ci ? Json(pc.ci->low) : Json(nullptr)},
                        {"ci_high", pc.ci ? Json(pc.ci->high) : Json(nullptr)},
                        {"test", k.test},
                        {"p_regression", k.p_regression},
                        {"p_noninferiority", k.p_noninferiority},
                        {"p_regression_adjusted", k.p_regression_adjusted},
                        {"p_noninferiority_adjusted", k.p_noninferiority_adjusted},
                        {"verdict", k.verdict},
                        {"reason", k.reason}});
    }
    return DumpJson(Json{{"verdict", r.verdict},
                         {"exit_code", r.exit_code},
                         {"policy",
                          {{"source", p.source},
                           {"alpha", p.alpha},
                           {"correction", p.holm ? "holm" : "none"},
                           {"inconclusive", p.inconclusive_fails ? "fail" : "pass"}}},
                         {"checks", checks},
                         {"notes", r.notes}},
                    2) +
           "\n";
  }
  if (format == "junit") {
    int failures = 0, skipped = 0;
    std::string cases;
    for (const auto& k : r.checks) {
      std::string body = fmt::format(
          "baseline run {}: {} {}; candidate run {}: {} {}; change {}; {} shared items; {}",
          k.baseline_run, FormatValue(k.comparison.a.value), FormatInterval(k.comparison.a),
          k.candidate_run, FormatValue(k.comparison.b.value), FormatInterval(k.comparison.b),
          Change(k), k.comparison.paired.shared, k.reason);
      cases += fmt::format("    <testcase classname=\"plumb.{}\" name=\"{}\">\n",
                           html::Escape(k.suite_id), html::Escape(CheckName(k)));
      if (k.verdict == "regression" || (k.verdict == "inconclusive" && p.inconclusive_fails)) {
        ++failures;
        cases += fmt::format("      <failure type=\"{}\" message=\"{}: {}\">{}</failure>\n",
                             k.verdict, k.verdict, html::Escape(k.reason), html::Escape(body));
      } else if (k.verdict == "inconclusive") {
        ++skipped;
        cases +=
            fmt::format("      <skipped message=\"inconclusive: {}\"/>\n", html::Escape(k.reason));
      }
      cases +=
          fmt::format("      <system-out>{}</system-out>\n    </testcase>\n", html::Escape(body));
    }
    return fmt::format(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
        "<testsuites name=\"plumb gate\" tests=\"{0}\" failures=\"{1}\" skipped=\"{2}\">\n"
        "  <testsuite name=\"plumb gate\" tests=\"{0}\" failures=\"{1}\" errors=\"0\" "
        "skipped=\"{2}\">\n"
        "    <properties><property name=\"verdict\" value=\"{3}\"/><property name=\"policy\" "
        "value=\"{4}\"/></properties>\n"
        "{5}  </testsuite>\n</testsuites>\n",
        r.checks.size(), failures, skipped, r.verdict, html::Escape(policy_line), cases);
  }
  if (format != "md")
    return InvalidArgument(fmt::format("unknown format '{}' (use md or json)", format));
  std::string verdict = r.verdict == "pass"         ? "PASS"
                        : r.verdict == "regression" ? "REGRESSION"
                                                    : "INCONCLUSIVE";
  std::string out = fmt::format("## plumb gate: {}\n\n{}\n\n", verdict, policy_line);
  out +=
      "| suite | metric | baseline | candidate | change (95% CI) | margin | shared | test | "
      "verdict |\n";
  out += "|---|---|---|---|---|---|---|---|---|\n";
  for (const auto& k : r.checks) {
    auto value = [](int64_t run, const Metric& m) {
      std::string ci = FormatInterval(m);
      return fmt::format("run {}: {}{}", run, FormatValue(m.value), ci.empty() ? "" : " " + ci);
    };
    out += fmt::format("| {} | {} | {} | {} | {} | {:g} ({}) | {} | {} | **{}** |\n",
                       MarkdownCell(k.suite_id), MarkdownCell(CheckName(k)),
                       value(k.baseline_run, k.comparison.a),
                       value(k.candidate_run, k.comparison.b), Change(k), k.margin,
                       k.higher_is_better ? "higher is better" : "lower is better",
                       k.comparison.paired.shared, k.test, k.verdict);
  }
  out += "\n";
  for (const auto& k : r.checks)
    out += fmt::format("- {} {}: {}: {}\n", k.suite_id, CheckName(k), k.verdict,
                       MarkdownCell(k.reason));
  for (const auto& n : r.notes) out += "- note: " + n + "\n";
  return out;
}

}  // namespace plumb
