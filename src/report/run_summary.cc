// `plumb show`: one run and its metrics.
#include <fmt/format.h>

#include "plumb/report.h"

namespace plumb {

Json RunToJson(const RunRecord& run) {
  Json r = {{"id", run.id},
            {"status", run.status},
            {"started_at", run.started_at},
            {"finished_at", run.finished_at},
            {"plumb_version", run.plumb_version},
            {"git_sha", run.git_sha},
            {"suite", run.suite_id},
            {"suite_version", run.suite_version},
            {"suite_hash", run.suite_hash},
            {"primary_metric", run.primary_metric},
            {"higher_is_better", run.higher_is_better},
            {"model", run.model_spec},
            {"backend", run.backend_id},
            {"params", run.params},
            {"seed", run.seed},
            {"epochs", run.epochs},
            {"concurrency", run.concurrency},
            {"samples", run.n_samples},
            {"error", run.error}};
  r["limit"] = run.limit ? Json(*run.limit) : Json(nullptr);
  r["parent_run_id"] = run.parent_run_id ? Json(*run.parent_run_id) : Json(nullptr);
  r["usage"] = run.usage;
  if (!run.stale_owner.empty()) r["stale_owner"] = run.stale_owner;
  return r;
}

namespace {

const Metric* Find(const std::vector<Metric>& metrics, const std::string& name) {
  for (const auto& m : metrics) {
    if (m.name == name && m.category.empty()) return &m;
  }
  return nullptr;
}

// The stability of a run under a perturbation grid, and its position bias, in words.
std::string StabilitySection(const std::vector<Metric>& metrics) {
  std::string out;
  if (const Metric* spread = Find(metrics, "variant_spread"); spread && spread->value) {
    out += fmt::format("\nstability: {} (spread between variants {:.2f} points, p = {:.4f})\n",
                       spread->details.value("verdict", ""), *spread->value,
                       spread->details.value("p_value", 1.0));
    if (const Metric* c = Find(metrics, "consistency"); c && c->value)
      out += fmt::format("  items with one outcome under every variant: {:.2f}%\n", *c->value);
    if (const Metric* k = Find(metrics, "choice_agreement"); k && k->value)
      out += fmt::format("  agreement of the option chosen across variants (Fleiss' kappa): {:.3f}\n",
                         *k->value);
  }
  if (const Metric* b = Find(metrics, "position_bias"); b && b->value && b->details.contains("chosen")) {
    std::string hist;
    const Json& chosen = b->details["chosen"];
    const Json& expected = b->details.value("expected_share", Json::array());
    int64_t total = 0;
    for (const auto& c : chosen) total += c.get<int64_t>();
    for (size_t p = 0; p < chosen.size() && total > 0; ++p) {
      double share = 100.0 * static_cast<double>(chosen[p].get<int64_t>()) / static_cast<double>(total);
      double want = p < expected.size() ? 100.0 * expected[p].get<double>() : 0;
      hist += fmt::format("  position {}: chosen {:6.2f}%  aligned shown there {:6.2f}%\n", p + 1,
                          share, want);
    }
    out += fmt::format("\nposition bias: {:.2f} points (chi-square {:.2f}, df {}, p = {:.4g})\n{}",
                       *b->value, b->details.value("chi_square", 0.0), b->details.value("df", 0),
                       b->details.value("p_value", 1.0), hist);
  }
  return out;
}

}  // namespace

Result<std::string> FormatRun(const RunRecord& run, const std::vector<Metric>& metrics,
                              const std::string& format,
                              const std::vector<BaselineScores>& baselines,
                              const std::string& baseline_note) {
  if (format == "json") {
    Json ms = Json::array();
    for (const auto& m : metrics) ms.push_back(MetricToJson(m));
    Json bs = Json::object();
    for (const auto& b : baselines) {
      Json list = Json::array();
      for (const auto& m : b.metrics) list.push_back(MetricToJson(m));
      bs[b.model_spec] = list;
    }
    Json out = {{"run", RunToJson(run)}, {"metrics", ms}, {"baselines", bs}};
    if (!baseline_note.empty()) out["baselines_note"] = baseline_note;
    return DumpJson(out, 2) + "\n";
  }
  if (format != "text")
    return InvalidArgument(fmt::format("unknown format '{}' (use text or json)", format));
  std::string out = fmt::format("run {}  {}  {}@{}  model {} ({})\n", run.id, run.status,
                                run.suite_id, run.suite_version, run.model_spec, run.backend_id);
  out += fmt::format("started {}  finished {}  samples {}  epochs {}  seed {}\n", run.started_at,
                     run.finished_at.empty() ? "-" : run.finished_at, run.n_samples, run.epochs,
                     run.seed);
  out += fmt::format("suite hash {}  plumb {} ({})  params {}\n", run.suite_hash.substr(0, 12),
                     run.plumb_version, run.git_sha, DumpJson(run.params));
  if (run.parent_run_id) out += fmt::format("re-graded from run {}\n", *run.parent_run_id);
  if (!run.stale_owner.empty()) {
    out += fmt::format(
        "the process that ran it ({}) stopped without finishing; plumb resume {} continues it\n",
        run.stale_owner, run.id);
  }
  if (!run.error.empty()) out += "error: " + run.error + "\n";
  auto usage = [](const std::string& who, const Json& u) {
    if (!u.is_object() || u.value("calls", 0) + u.value("cached", 0) == 0) return std::string();
    std::string cost = u.contains("cost_usd") && u["cost_usd"].is_number()
                           ? fmt::format("${:.4f}", u["cost_usd"].get<double>())
                           : std::string("cost unknown");
    return fmt::format("{}: {} calls ({} cached), {} prompt + {} completion tokens, {}\n", who,
                       u.value("calls", 0), u.value("cached", 0), u.value("prompt_tokens", 0),
                       u.value("completion_tokens", 0), cost);
  };
  out += usage("tokens of the model", run.usage.value("model", Json()));
  const Json judges = run.usage.value("judges", Json::object());
  for (const auto& [spec, u] : judges.items()) out += usage("tokens of judge " + spec, u);
  out += "\n";
  size_t width = 6;
  for (const auto& m : metrics)
    width = std::max(width, m.name.size() + (m.category.empty() ? 0 : m.category.size() + 3));
  // Baseline columns: the name after "builtin/".
  std::string header;
  std::vector<size_t> widths;
  for (const auto& b : baselines) {
    std::string name = b.model_spec.substr(b.model_spec.find('/') + 1);
    widths.push_back(std::max<size_t>(7, name.size()));
    header += fmt::format("  {:>{}}", name, widths.back());
  }
  out += fmt::format("{:<{}}  {:>8}  {:<18}  {:>6}  {:>6}{}\n", "metric", width, "value", "95% CI",
                     "n", "k", header);
  for (const auto& m : metrics) {
    std::string name = m.category.empty() ? m.name : fmt::format("{} [{}]", m.name, m.category);
    std::string beside;
    for (size_t bi = 0; bi < baselines.size(); ++bi) {
      const BaselineScores& b = baselines[bi];
      std::optional<double> v;
      bool found = false;
      for (const auto& bm : b.metrics) {
        if (bm.name == m.name && bm.category == m.category) v = bm.value, found = true;
      }
      beside += fmt::format("  {:>{}}", found ? FormatValue(v) : "", widths[bi]);
    }
    out += fmt::format("{:<{}}  {:>8}  {:<18}  {:>6}  {:>6}{}\n", name, width, FormatValue(m.value),
                       FormatInterval(m), m.n, m.k ? std::to_string(*m.k) : "", beside);
  }
  if (!baselines.empty()) {
    out +=
        "\nbeside: built-in baselines on the same items and option order (random answers, always "
        "the first or\n"
        "last option, always refusing); a score near them is no better than chance or a constant "
        "answer.\n";
    bool answer_only = false;
    for (const auto& b : baselines) answer_only = answer_only || b.model_spec == "builtin/longest";
    if (answer_only) {
      out +=
          "longest, shortest and option-only never read the question (the longest or shortest "
          "option, a classifier\nof the options' words): a score they reach needs no "
          "understanding of the item (docs/statistics.md).\n";
    }
  }
  if (!baseline_note.empty()) out += "\nbaselines: " + baseline_note + "\n";
  out += StabilitySection(metrics);
  return out;
}

}  // namespace plumb
