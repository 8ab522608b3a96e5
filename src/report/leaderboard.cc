// Leaderboards: per suite, one row per model (its newest completed run, or chosen runs), ranked
// by a metric with ranks shared where intervals overlap, the built-in baselines as references.
// Read from the metrics table only, so the size of the scores table does not matter.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "plumb/report.h"
#include "plumb/text.h"
#include "report/html.h"

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

// Shortest text that parses back to the same double ("" when undefined): exports round-trip.
std::string Exact(const std::optional<double>& v) { return v ? fmt::format("{}", *v) : ""; }

Json OptJson(const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); }

bool IsBuiltin(const std::string& spec) { return spec.rfind("builtin/", 0) == 0; }

// The row of `run` from its stored metrics.
LeaderboardRow RowOf(const RunRecord& run, const std::vector<Metric>& metrics,
                     const std::string& metric) {
  LeaderboardRow row;
  row.model_spec = run.model_spec;
  row.run = run;
  row.reference = IsBuiltin(run.model_spec);
  row.metric.name = metric;
  for (const auto& m : metrics) {
    if (!m.category.empty()) {
      if (m.name == metric) row.categories.push_back(m);
      continue;
    }
    if (m.name == metric) row.metric = m;
    if (m.name == "error_rate") row.errors = m;
    if (m.name == "consistency") row.consistency = m;
    if (m.name == "position_bias") row.position_bias = m;
    if (m.name.size() > 17 && m.name.compare(m.name.size() - 17, 17, ".judge_error_rate") == 0 &&
        m.value && (!row.judge_errors || *m.value > *row.judge_errors->value)) {
      row.judge_errors = m;
    }
  }
  return row;
}

// Orders rows best first (undefined last) and ranks the non-reference ones.
void Rank(LeaderboardSection& s) {
  bool hib = s.higher_is_better;
  auto better = [hib](double a, double b) { return hib ? a > b : a < b; };
  std::stable_sort(s.rows.begin(), s.rows.end(),
                   [&](const LeaderboardRow& a, const LeaderboardRow& b) {
                     if (a.metric.value.has_value() != b.metric.value.has_value())
                       return a.metric.value.has_value();
                     if (a.metric.value && *a.metric.value != *b.metric.value)
                       return better(*a.metric.value, *b.metric.value);
                     return a.model_spec < b.model_spec;
                   });
  for (auto& r : s.rows) {
    if (r.reference || !r.metric.value) continue;
    // This row's interval, and whether another's lies entirely on its better side.
    double lo = r.metric.ci_low.value_or(*r.metric.value),
           hi = r.metric.ci_high.value_or(*r.metric.value);
    r.rank = 1;
    for (const auto& o : s.rows) {
      if (&o == &r || o.reference || !o.metric.value) continue;
      double olo = o.metric.ci_low.value_or(*o.metric.value),
             ohi = o.metric.ci_high.value_or(*o.metric.value);
      r.rank += hib ? olo > hi : ohi < lo;
    }
  }
}

std::string RankText(const LeaderboardRow& r) {
  return r.reference ? "ref" : r.rank ? std::to_string(r.rank) : "-";
}

std::string Date(const RunRecord& r) {
  return r.id == 0 || r.finished_at.size() < 10 ? "-" : r.finished_at.substr(0, 10);
}

std::string ErrorsText(const LeaderboardRow& r) {
  return r.errors && r.errors->k ? std::to_string(*r.errors->k) : (r.run.id == 0 ? "-" : "0");
}

std::string JudgeErrorsText(const LeaderboardRow& r) {
  return r.judge_errors ? fmt::format("{:.1f}%", *r.judge_errors->value) : "-";
}

std::string LatexEscape(const std::string& s) {
  std::string out;
  for (char c : s) {
    switch (c) {
      case '\\':
        out += "\\textbackslash{}";
        break;
      case '&':
      case '%':
      case '$':
      case '#':
      case '_':
      case '{':
      case '}':
        out += '\\';
        out += c;
        break;
      case '~':
        out += "\\textasciitilde{}";
        break;
      case '^':
        out += "\\textasciicircum{}";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string Heading(const LeaderboardSection& s) {
  return fmt::format("{} (v{}): {}, {} is better", s.suite_id, s.suite_version, s.metric,
                     s.higher_is_better ? "higher" : "lower");
}

}  // namespace

std::string FormatValue(const std::optional<double>& v) {
  return v ? fmt::format("{:.2f}", *v) : "-";
}

std::string StabilityText(const std::optional<Metric>& m) {
  if (!m || !m->value) return "-";
  return fmt::format("{} {}", FormatValue(m->value), FormatInterval(*m));
}

std::string FormatInterval(const Metric& m) {
  if (!m.ci_low || !m.ci_high) return "";
  return fmt::format("[{:.2f}, {:.2f}]", *m.ci_low, *m.ci_high);
}

Result<Leaderboard> BuildLeaderboard(const Store& store, const LeaderboardQuery& query,
                                     const BaselineSource& baselines) {
  Leaderboard board;
  board.generated_at = NowIso8601();
  board.with_stability = query.with_stability;
  // The runs that make rows, per suite and suite version: runs of different versions of a suite
  // answered different items, so they are never ranked together (newest version first).
  auto section_of = [](const RunRecord& r) { return std::make_pair(r.suite_id, -r.suite_version); };
  std::map<std::pair<std::string, int>, std::vector<RunRecord>> by_suite;
  if (!query.runs.empty()) {
    for (int64_t id : query.runs) {
      PLUMB_ASSIGN_OR_RETURN(RunRecord r, store.GetRun(id));
      by_suite[section_of(r)].push_back(std::move(r));
    }
  } else {
    std::vector<std::string> suites =
        query.suites.empty() ? std::vector<std::string>{""} : query.suites;
    for (const auto& suite : suites) {
      PLUMB_ASSIGN_OR_RETURN(auto runs, store.ListRuns(RunFilter{suite, "completed"}));
      if (runs.empty() && !suite.empty())
        board.notes.push_back(fmt::format("suite '{}' has no completed runs", suite));
      std::map<std::tuple<std::string, int, std::string>, RunRecord> latest;
      for (auto& r : runs) {
        if (query.all_runs) {
          by_suite[section_of(r)].push_back(std::move(r));
        } else {
          latest[{r.suite_id, -r.suite_version, r.model_spec}] =
              std::move(r);  // ordered by id: the newest wins
        }
      }
      for (auto& [key, r] : latest)
        by_suite[{std::get<0>(key), std::get<1>(key)}].push_back(std::move(r));
    }
  }
  for (auto& [key, runs] : by_suite) {
    const std::string& suite_id = key.first;
    std::sort(runs.begin(), runs.end(),
              [](const RunRecord& a, const RunRecord& b) { return a.id < b.id; });
    const RunRecord& newest = runs.back();
    LeaderboardSection s;
    s.suite_id = suite_id;
    s.suite_version = newest.suite_version;
    s.metric = query.metric.empty() ? newest.primary_metric : query.metric;
    s.higher_is_better = newest.higher_is_better;
    bool found = false;
    for (const auto& run : runs) {
      PLUMB_ASSIGN_OR_RETURN(auto metrics, store.GetMetrics(run.id));
      LeaderboardRow row = RowOf(run, metrics, s.metric);
      found = found || row.metric.value.has_value() || !row.metric.ci_method.empty();
      s.rows.push_back(std::move(row));
    }
    if (!found && !query.metric.empty()) {
      board.notes.push_back(
          fmt::format("suite '{}' does not report metric '{}'", suite_id, query.metric));
      continue;
    }
    // Runs record only the primary metric's direction (its reducers, "<primary>@...", share it).
    bool primary =
        s.metric == newest.primary_metric || s.metric.rfind(newest.primary_metric + "@", 0) == 0;
    if (query.higher_is_better) {
      s.higher_is_better = *query.higher_is_better;
    } else if (!primary) {
      return InvalidArgument(
          fmt::format("metric '{}' is not suite '{}''s primary metric: say which way is better "
                      "with --direction higher|lower",
                      s.metric, suite_id));
    }
    if (baselines) {
      std::set<std::string> present;
      for (const auto& r : s.rows) present.insert(r.model_spec);
      for (auto& b : baselines(newest)) {
        if (present.count(b.model_spec)) continue;
        RunRecord none;
        none.model_spec = b.model_spec;
        LeaderboardRow row = RowOf(none, b.metrics, s.metric);
        row.reference = true;
        s.rows.push_back(std::move(row));
      }
    }
    Rank(s);
    board.sections.push_back(std::move(s));
  }
  if (!query.metric.empty() && board.sections.empty() && !by_suite.empty()) {
    return InvalidArgument(fmt::format(
        "no suite on this leaderboard reports metric '{}' (plumb show RUN lists a run's metrics)",
        query.metric));
  }
  return board;
}

LeaderboardOverview Overview(const Leaderboard& board) {
  LeaderboardOverview o;
  if (board.sections.size() < 2) return o;
  std::map<std::string, size_t> index;
  for (size_t c = 0; c < board.sections.size(); ++c) {
    for (const auto& r : board.sections[c].rows) {
      auto [it, added] = index.emplace(r.model_spec, o.models.size());
      if (added) {
        o.models.push_back(r.model_spec);
        o.reference.push_back(r.reference);
        o.cells.emplace_back(board.sections.size(), nullptr);
      }
      if (o.cells[it->second][c] != nullptr)
        return LeaderboardOverview{};  // several runs of one model
      o.cells[it->second][c] = &r;
    }
  }
  // Mean rank over the sections where the model is ranked; unranked models after ranked ones.
  std::vector<double> mean(o.models.size(), 1e9);
  for (size_t m = 0; m < o.models.size(); ++m) {
    double sum = 0;
    int n = 0;
    for (const auto* r : o.cells[m]) {
      if (r && r->rank) sum += r->rank, ++n;
    }
    if (n) mean[m] = sum / n;
  }
  std::vector<size_t> order(o.models.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (o.reference[a] != o.reference[b]) return !o.reference[a];
    if (mean[a] != mean[b]) return mean[a] < mean[b];
    return o.models[a] < o.models[b];
  });
  LeaderboardOverview sorted;
  for (size_t i : order) {
    sorted.models.push_back(o.models[i]);
    sorted.reference.push_back(o.reference[i]);
    sorted.cells.push_back(o.cells[i]);
  }
  return sorted;
}

std::string OverviewCell(const LeaderboardRow* row) {
  if (row == nullptr) return "-";
  std::string out = FormatValue(row->metric.value);
  if (std::string ci = FormatInterval(row->metric); !ci.empty()) out += " " + ci;
  if (row->rank) out += fmt::format(" #{}", row->rank);
  return out;
}

Result<std::string> FormatLeaderboard(const Leaderboard& board, const std::string& format) {
  std::string out;
  if (format == "md") {
    if (board.sections.empty()) return std::string("No completed runs yet.\n");
    if (LeaderboardOverview o = Overview(board); !o.models.empty()) {
      out += "## Overview\n\n| model |";
      for (const auto& s : board.sections) {
        out += fmt::format(" {} v{}: {} {} |", MarkdownCell(s.suite_id), s.suite_version,
                           MarkdownCell(s.metric), s.higher_is_better ? "↑" : "↓");
      }
      out += "\n|---|";
      for (size_t c = 0; c < board.sections.size(); ++c) out += "---|";
      out += "\n";
      for (size_t m = 0; m < o.models.size(); ++m) {
        out += o.reference[m] ? "| _" + MarkdownCell(o.models[m]) + "_ |"
                              : "| " + MarkdownCell(o.models[m]) + " |";
        for (const auto* r : o.cells[m]) out += " " + OverviewCell(r) + " |";
        out += "\n";
      }
    }
    for (const auto& s : board.sections) {
      out += fmt::format("{}## {}\n\n", out.empty() ? "" : "\n", Heading(s));
      out += fmt::format(
          "| # | model | {} | 95% CI | n | errors | judge errors |{} run | date | plumb |\n",
          MarkdownCell(s.metric), board.with_stability ? " consistency | position bias |" : "");
      out += board.with_stability ? "|---|---|---:|---|---:|---:|---:|---|---|---:|---|---|\n"
                                  : "|---|---|---:|---|---:|---:|---:|---:|---|---|\n";
      for (const auto& r : s.rows) {
        std::string model =
            r.reference ? "_" + MarkdownCell(r.model_spec) + "_" : MarkdownCell(r.model_spec);
        std::string stability = board.with_stability
                                    ? fmt::format(" {} | {} |", StabilityText(r.consistency),
                                                  StabilityText(r.position_bias))
                                    : "";
        out += fmt::format("| {} | {} | {} | {} | {} | {} | {} |{} {} | {} | {} |\n", RankText(r),
                           model, FormatValue(r.metric.value), FormatInterval(r.metric), r.metric.n,
                           ErrorsText(r), JudgeErrorsText(r), stability,
                           r.run.id ? std::to_string(r.run.id) : "-", Date(r.run),
                           r.run.id ? r.run.plumb_version : "-");
      }
    }
    out += std::string("\n") + kRankFootnote + "\n";
    for (const auto& n : board.notes) out += "\nNote: " + n + "\n";
    return out;
  }
  if (format == "csv") {
    out =
        "suite,suite_version,metric,higher_is_better,rank,reference,model,value,ci_low,ci_high,n,k,"
        "errors,"
        "judge_error_rate,run_id,finished_at,plumb_version" +
        std::string(board.with_stability ? ",consistency,position_bias" : "") + "\n";
    for (const auto& s : board.sections) {
      for (const auto& r : s.rows) {
        out +=
            fmt::format("{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{},{}", CsvField(s.suite_id),
                        s.suite_version, CsvField(s.metric), s.higher_is_better ? 1 : 0, r.rank,
                        r.reference ? 1 : 0, CsvField(r.model_spec), Exact(r.metric.value),
                        Exact(r.metric.ci_low), Exact(r.metric.ci_high), r.metric.n,
                        r.metric.k ? std::to_string(*r.metric.k) : "",
                        r.errors && r.errors->k ? *r.errors->k : 0,
                        Exact(r.judge_errors ? r.judge_errors->value : std::nullopt), r.run.id,
                        CsvField(r.run.finished_at), CsvField(r.run.plumb_version));
        if (board.with_stability) {
          out += fmt::format(",{},{}", Exact(r.consistency ? r.consistency->value : std::nullopt),
                             Exact(r.position_bias ? r.position_bias->value : std::nullopt));
        }
        out += "\n";
      }
    }
    return out;
  }
  if (format == "json") {
    Json sections = Json::array();
    for (const auto& s : board.sections) {
      Json rows = Json::array();
      for (const auto& r : s.rows) {
        Json j = {
            {"rank", r.rank ? Json(r.rank) : Json(nullptr)},
            {"reference", r.reference},
            {"model", r.model_spec},
            {"value", OptJson(r.metric.value)},
            {"ci_low", OptJson(r.metric.ci_low)},
            {"ci_high", OptJson(r.metric.ci_high)},
            {"n", r.metric.n},
            {"k", r.metric.k ? Json(*r.metric.k) : Json(nullptr)},
            {"errors", r.errors && r.errors->k ? *r.errors->k : 0},
            {"judge_error_rate", OptJson(r.judge_errors ? r.judge_errors->value : std::nullopt)},
            {"run_id", r.run.id ? Json(r.run.id) : Json(nullptr)},
            {"finished_at", r.run.finished_at},
            {"plumb_version", r.run.plumb_version}};
        if (board.with_stability) {
          for (const auto& [key, m] : {std::pair{"consistency", &r.consistency},
                                       std::pair{"position_bias", &r.position_bias}}) {
            j[key] = *m ? Json{{"value", OptJson((*m)->value)},
                               {"ci_low", OptJson((*m)->ci_low)},
                               {"ci_high", OptJson((*m)->ci_high)}}
                        : Json(nullptr);
          }
        }
        rows.push_back(j);
      }
      sections.push_back({{"suite", s.suite_id},
                          {"suite_version", s.suite_version},
                          {"metric", s.metric},
                          {"higher_is_better", s.higher_is_better},
                          {"rows", rows}});
    }
    return DumpJson(Json{{"generated_at", board.generated_at},
                         {"suites", sections},
                         {"footnote", kRankFootnote},
                         {"notes", board.notes}},
                    2) +
           "\n";
  }
  if (format == "latex") {
    // The overview, then one booktabs table per suite; reference rows in italics.
    if (LeaderboardOverview o = Overview(board); !o.models.empty()) {
      out += "\\begin{table}[t]\n\\centering\n\\caption{Overview}\n";
      out += "\\begin{tabular}{l" + std::string(board.sections.size(), 'c') + "}\n\\toprule\nModel";
      for (const auto& s : board.sections) {
        out += fmt::format(" & {} v{}: {} ${}$", LatexEscape(s.suite_id), s.suite_version,
                           LatexEscape(s.metric), s.higher_is_better ? "\\uparrow" : "\\downarrow");
      }
      out += " \\\\\n\\midrule\n";
      for (size_t m = 0; m < o.models.size(); ++m) {
        auto cell = [&](const std::string& text) {
          return o.reference[m] ? "\\textit{" + text + "}" : text;
        };
        out += cell(LatexEscape(o.models[m]));
        for (const auto* r : o.cells[m]) out += " & " + cell(LatexEscape(OverviewCell(r)));
        out += " \\\\\n";
      }
      out += "\\bottomrule\n\\end{tabular}\n\\end{table}\n\n";
    }
    for (const auto& s : board.sections) {
      out += "\\begin{table}[t]\n\\centering\n";
      out += fmt::format("\\caption{{{}}}\n", LatexEscape(Heading(s)));
      out += board.with_stability ? "\\begin{tabular}{rlrlrrrll}\n\\toprule\n"
                                  : "\\begin{tabular}{rlrlrrr}\n\\toprule\n";
      out += fmt::format(
          "Rank & Model & {} & 95\\% CI & $n$ & Errors & Judge errors{} \\\\\n\\midrule\n",
          LatexEscape(s.metric), board.with_stability ? " & Consistency & Position bias" : "");
      for (const auto& r : s.rows) {
        auto cell = [&](const std::string& text) {
          return r.reference ? "\\textit{" + text + "}" : text;
        };
        std::string stability = board.with_stability
                                    ? fmt::format(" & {} & {}", cell(StabilityText(r.consistency)),
                                                  cell(StabilityText(r.position_bias)))
                                    : "";
        out += fmt::format("{} & {} & {} & {} & {} & {} & {}{} \\\\\n", cell(RankText(r)),
                           cell(LatexEscape(r.model_spec)), cell(FormatValue(r.metric.value)),
                           cell(FormatInterval(r.metric)), r.metric.n, ErrorsText(r),
                           LatexEscape(JudgeErrorsText(r)), stability);
      }
      out += "\\bottomrule\n\\end{tabular}\n";
      out += fmt::format("\\\\[2pt]{{\\footnotesize {}}}\n\\end{{table}}\n\n",
                         LatexEscape(kRankFootnote));
    }
    return out;
  }
  if (format == "html") return html::LeaderboardPage(board, html::RunLinks::kNone);
  return InvalidArgument(
      fmt::format("unknown format '{}' (use md, csv, json, latex or html)", format));
}

}  // namespace plumb
