// Leaderboards: the latest completed run per (suite, model), ranked by the suite's primary metric.
#include <fmt/format.h>

#include <algorithm>
#include <map>

#include "plumb/report.h"

namespace plumb {
namespace {

std::string CsvField(const std::string& s) {
  if (s.find_first_of(",\"\n\r") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) {
    if (c == '"') out += '"';
    out += c;
  }
  return out + "\"";
}

std::string Opt(const std::optional<double>& v) { return v ? fmt::format("{:.4f}", *v) : ""; }

Json OptJson(const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); }

}  // namespace

std::string FormatValue(const std::optional<double>& v) {
  return v ? fmt::format("{:.2f}", *v) : "-";
}

std::string FormatInterval(const Metric& m) {
  if (!m.ci_low || !m.ci_high) return "";
  return fmt::format("[{:.2f}, {:.2f}]", *m.ci_low, *m.ci_high);
}

Result<std::vector<LeaderboardRow>> BuildLeaderboard(const Store& store, const std::string& suite_id) {
  PLUMB_ASSIGN_OR_RETURN(auto runs, store.ListRuns(RunFilter{suite_id, "completed"}));
  std::map<std::pair<std::string, std::string>, RunRecord> latest;
  for (auto& r : runs) latest[{r.suite_id, r.model_spec}] = r;  // ordered by id: last wins
  std::vector<LeaderboardRow> rows;
  for (auto& [key, run] : latest) {
    PLUMB_ASSIGN_OR_RETURN(auto metrics, store.GetMetrics(run.id));
    LeaderboardRow row;
    row.suite_id = run.suite_id;
    row.suite_version = run.suite_version;
    row.model_spec = run.model_spec;
    row.metric.name = run.primary_metric;
    for (const auto& m : metrics) {
      if (!m.category.empty()) continue;
      if (m.name == run.primary_metric) row.metric = m;
      if (m.name == "error_rate") row.errors = m;
    }
    row.run = std::move(run);
    rows.push_back(std::move(row));
  }
  std::stable_sort(rows.begin(), rows.end(), [](const LeaderboardRow& a, const LeaderboardRow& b) {
    if (a.suite_id != b.suite_id) return a.suite_id < b.suite_id;
    // Undefined values (no samples) rank last whichever direction is better.
    if (a.metric.value.has_value() != b.metric.value.has_value()) return a.metric.value.has_value();
    double va = a.metric.value.value_or(0), vb = b.metric.value.value_or(0);
    if (!a.run.higher_is_better) va = -va, vb = -vb;
    if (va != vb) return va > vb;
    return a.model_spec < b.model_spec;
  });
  return rows;
}

Result<std::string> FormatLeaderboard(const std::vector<LeaderboardRow>& rows,
                                      const std::string& format) {
  std::string out;
  if (format == "md") {
    if (rows.empty()) return std::string("No completed runs yet.\n");
    std::string suite;
    int rank = 0;
    for (const auto& r : rows) {
      if (r.suite_id != suite) {
        suite = r.suite_id;
        rank = 0;
        out += fmt::format("{}## {} (v{}): {}{}\n\n", out.empty() ? "" : "\n", r.suite_id,
                           r.suite_version, r.metric.name,
                           r.run.higher_is_better ? ", higher is better" : ", lower is better");
        out += "| # | model | " + r.metric.name + " | 95% CI | n | errors | run | finished |\n";
        out += "|---|---|---:|---|---:|---:|---:|---|\n";
      }
      std::string errors = r.errors && r.errors->k ? std::to_string(*r.errors->k) : "0";
      out += fmt::format("| {} | {} | {} | {} | {} | {} | {} | {} |\n", ++rank, r.model_spec,
                         FormatValue(r.metric.value), FormatInterval(r.metric), r.metric.n, errors,
                         r.run.id, r.run.finished_at);
    }
    return out;
  }
  if (format == "csv") {
    out = "suite,suite_version,model,metric,value,ci_low,ci_high,n,errors,run_id,finished_at\n";
    for (const auto& r : rows) {
      out += fmt::format("{},{},{},{},{},{},{},{},{},{},{}\n", CsvField(r.suite_id), r.suite_version,
                         CsvField(r.model_spec), CsvField(r.metric.name), Opt(r.metric.value),
                         Opt(r.metric.ci_low), Opt(r.metric.ci_high), r.metric.n,
                         r.errors && r.errors->k ? *r.errors->k : 0, r.run.id, r.run.finished_at);
    }
    return out;
  }
  if (format == "json") {
    Json arr = Json::array();
    for (const auto& r : rows) {
      arr.push_back({{"suite", r.suite_id},
                     {"suite_version", r.suite_version},
                     {"model", r.model_spec},
                     {"metric", r.metric.name},
                     {"higher_is_better", r.run.higher_is_better},
                     {"value", OptJson(r.metric.value)},
                     {"ci_low", OptJson(r.metric.ci_low)},
                     {"ci_high", OptJson(r.metric.ci_high)},
                     {"n", r.metric.n},
                     {"errors", r.errors && r.errors->k ? *r.errors->k : 0},
                     {"run_id", r.run.id},
                     {"finished_at", r.run.finished_at}});
    }
    return arr.dump(2) + "\n";
  }
  return InvalidArgument(fmt::format("unknown format '{}' (use md, csv or json)", format));
}

}  // namespace plumb
