// plumb report: one self-contained HTML file with the leaderboard, bar charts with interval
// whiskers, per-category heat maps, judge-score distributions and every item's drill-down.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>

#include "plumb/log.h"
#include "plumb/report.h"
#include "plumb/say_do.h"
#include "plumb/version.h"
#include "report/html.h"

namespace plumb {
namespace {

using html::Escape;

// The last user message of a request (the prompt the model answered).
std::string LastUser(const Json& request) {
  std::string text;
  if (!request.is_array()) return text;
  for (const auto& m : request) {
    if (m.is_object() && m.value("role", "") == "user") text = m.value("content", "");
  }
  return text;
}

bool IsJudgeGrade(const Grade& g) {
  return g.details.is_object() && g.details.value("judge_grader", false);
}

std::string GradeValue(const Grade& g) {
  if (g.status == GradeStatus::kError) return "error";
  std::string out =
      g.value ? fmt::format("{:g}", *g.value) : std::string(GradeStatusName(g.status));
  if (!g.label.empty() && g.label != out) out += " (" + g.label + ")";
  return out;
}

// An agent's episode, turn by turn: what it said, each tool call with its arguments and what it
// was told, the decisive call highlighted, and the outcome. `grade` (the agentic grade) holds the
// calls as the environment saw them; without it the calls come from the replies.
std::string TranscriptHtml(const std::vector<ResponseRecord>& responses, const Grade* grade) {
  const Json* calls = grade != nullptr && grade->details.is_object() &&
                              grade->details.contains("transcript") &&
                              grade->details["transcript"].is_array()
                          ? &grade->details["transcript"]
                          : nullptr;
  std::string out = "<div class=\"transcript\">";
  for (const auto& r : responses) {
    out += fmt::format("<div class=\"turn\"><b>turn {}</b>", r.turn + 1);
    if (!r.ok) {
      out += fmt::format("<div class=\"error\">error: {}: {}</div></div>", Escape(r.error_code),
                         Escape(Redact(r.error_message)));
      continue;
    }
    if (!r.completion.text.empty())
      out += "<div class=\"text\">" + Escape(Redact(r.completion.text)) + "</div>";
    bool from_grade = false;
    if (calls != nullptr) {
      for (const auto& c : *calls) {
        if (!c.is_object() || c.value("turn", -1) != r.turn) continue;
        from_grade = true;
        bool decisive = c.value("decisive", false), valid = c.value("valid", true);
        std::string outcome = c.value("outcome", "neutral");
        out += fmt::format(
            "<div class=\"call{}{}\">{}{}({}) <span class=\"outcome-{}\">{}</span></div>",
            decisive ? " decisive" : "", valid ? "" : " invalid", decisive ? "&#9654; " : "",
            Escape(c.value("tool", "")), Escape(Redact(c.value("arguments", ""))), Escape(outcome),
            Escape(decisive ? outcome + ", decisive"
                   : valid  ? outcome
                            : "invalid"));
        out += "<div class=\"text result\">" + Escape(Redact(c.value("result", ""))) + "</div>";
      }
    }
    if (!from_grade) {
      for (const auto& c : r.completion.tool_calls) {
        out += fmt::format("<div class=\"call\">{}({})</div>", Escape(c.name),
                           Escape(Redact(c.arguments)));
      }
    }
    out += "</div>";
  }
  if (grade != nullptr && grade->status != GradeStatus::kError) {
    std::string ended = grade->details.is_object() ? grade->details.value("ended_by", "") : "";
    std::string cls = grade->label == "aligned"      ? "aligned"
                      : grade->label == "misaligned" ? "misaligned"
                                                     : "neutral";
    out += fmt::format("<div>outcome: <span class=\"outcome-{}\">{}</span>{}</div>", cls,
                       Escape(grade->label), ended.empty() ? "" : " (" + Escape(ended) + ")");
  }
  return out + "</div>";
}

// Per category: the ranked metric of each row (heat map); empty when the suite has no categories.
std::string CategoryHeatMap(const LeaderboardSection& s) {
  std::vector<std::string> columns;
  for (const auto& r : s.rows) {
    for (const auto& m : r.categories) {
      if (std::find(columns.begin(), columns.end(), m.category) == columns.end())
        columns.push_back(m.category);
    }
  }
  if (columns.empty()) return "";
  std::sort(columns.begin(), columns.end());
  std::vector<std::string> rows;
  std::vector<std::vector<std::optional<double>>> values;
  for (const auto& r : s.rows) {
    rows.push_back(r.model_spec);
    std::vector<std::optional<double>> line(columns.size());
    for (const auto& m : r.categories) {
      line[static_cast<size_t>(std::find(columns.begin(), columns.end(), m.category) -
                               columns.begin())] = m.value;
    }
    values.push_back(std::move(line));
  }
  return html::HeatMap(fmt::format("{}: {} by category", s.suite_id, s.metric), rows, columns,
                       values, s.higher_is_better);
}

// Per run of a perturbation grid: the primary metric per variant (with whiskers), the noise
// verdict, consistency and agreement; and for every choice run the positions chosen against
// where the aligned options were shown.
Result<std::string> StabilitySections(const Store& store, const LeaderboardSection& s) {
  std::string out;
  for (const auto& r : s.rows) {
    if (r.run.id == 0) continue;
    PLUMB_ASSIGN_OR_RETURN(std::vector<Metric> metrics, store.GetMetrics(r.run.id));
    std::vector<html::Bar> variants;
    const Metric *spread = nullptr, *consistency = nullptr, *agreement = nullptr, *bias = nullptr;
    for (const auto& m : metrics) {
      // Variant names are "axis=level,..."; the suite's own categories have no '='.
      if (m.name == s.metric && m.category.find('=') != std::string::npos) {
        variants.push_back(html::Bar{m.category, m.value, m.ci_low, m.ci_high, false});
      }
      if (!m.category.empty()) continue;
      if (m.name == "variant_spread") spread = &m;
      if (m.name == "consistency") consistency = &m;
      if (m.name == "choice_agreement") agreement = &m;
      if (m.name == "position_bias") bias = &m;
    }
    std::string section;
    if (spread != nullptr && spread->value && !variants.empty()) {
      section +=
          html::BarChart(fmt::format("run {}: {} per presentation", r.run.id, s.metric), variants);
      section += fmt::format(
          "<p class=\"stability\"><strong>{}</strong>: spread between variants {} points "
          "(p = {:.4f}); items with one outcome under every variant {}%; agreement of the option "
          "chosen (Fleiss' kappa) {}.</p>\n",
          Escape(spread->details.value("verdict", "")), FormatValue(spread->value),
          spread->details.value("p_value", 1.0),
          consistency ? FormatValue(consistency->value) : std::string("-"),
          agreement && agreement->value ? fmt::format("{:.3f}", *agreement->value)
                                        : std::string("-"));
    }
    if (bias != nullptr && bias->value && bias->details.contains("chosen")) {
      const Json& chosen = bias->details["chosen"];
      const Json& expected = bias->details.value("expected_share", Json::array());
      double total = 0;
      for (const auto& c : chosen) total += c.get<double>();
      std::vector<html::Bar> bars;
      for (size_t p = 0; p < chosen.size() && total > 0; ++p) {
        bars.push_back(html::Bar{fmt::format("position {} chosen", p + 1),
                                 100 * chosen[p].get<double>() / total, std::nullopt, std::nullopt,
                                 false});
        if (p < expected.size()) {
          bars.push_back(html::Bar{fmt::format("position {}: aligned shown", p + 1),
                                   100 * expected[p].get<double>(), std::nullopt, std::nullopt,
                                   true});
        }
      }
      section += html::BarChart(
          fmt::format("run {}: position bias {} points (chi-square p = {:.3g})", r.run.id,
                      FormatValue(bias->value), bias->details.value("p_value", 1.0)),
          bars);
    }
    if (!section.empty()) {
      out += fmt::format("<h4>{} (run {})</h4>\n", Escape(r.model_spec), r.run.id) + section;
    }
  }
  if (out.empty()) return out;
  return "<h3>Stability</h3>\n" + out;
}

// Histograms of judge scores per run and judge grader (judged suites only).
Result<std::string> Distributions(const Store& store, const LeaderboardSection& s) {
  std::string out;
  for (const auto& r : s.rows) {
    // Only judged runs have judge scores (and a judge-error rate); others are not read at all.
    if (r.run.id == 0 || !r.judge_errors) continue;
    std::map<std::string, std::vector<double>> by_grader;
    PLUMB_RETURN_IF_ERROR(store.ScanSamples(r.run.id, SampleScan{}, [&](SampleRecord&& sample) {
      for (const auto& g : sample.grades) {
        if (!IsJudgeGrade(g) || g.grader.find('|') != std::string::npos ||
            g.status != GradeStatus::kScored || !g.value)
          continue;
        by_grader[g.grader].push_back(*g.value);
      }
      return true;
    }));
    for (const auto& [grader, values] : by_grader) {
      double top = *std::max_element(values.begin(), values.end());
      double hi = top <= 1 ? 1 : top <= 10 ? 10 : 100;
      out += html::Histogram(fmt::format("run {} ({}): {} scores, n = {}", r.run.id, r.model_spec,
                                         grader, values.size()),
                             values, 0, hi, 10);
    }
  }
  if (out.empty()) return out;
  return "<h3>Judge score distributions</h3>\n<div class=\"distributions\">" + out + "</div>\n";
}

// Every sample of a run: prompt, replies, parsed answer, rule scores and judgments with reasons.
Result<std::string> DrillDown(const Store& store, const RunRecord& run, int max_items) {
  PLUMB_ASSIGN_OR_RETURN(auto items, store.GetItems(run.id));
  PLUMB_ASSIGN_OR_RETURN(SampleCounts counts, store.CountSamples(run.id));
  // Only the samples shown are read, however large the run.
  PLUMB_ASSIGN_OR_RETURN(auto samples,
                         store.GetSamples(run.id, /*with_responses=*/true, 0, max_items));
  std::map<std::string, std::string> category;
  for (const auto& i : items) category[i.id] = i.category;
  std::string table_id = fmt::format("items-{}", run.id);
  std::string out = fmt::format(
      "<details class=\"drilldown\" id=\"run-{0}\"><summary>run {0}: {1}, {2} samples</summary>\n"
      "<input class=\"filter\" type=\"search\" placeholder=\"filter items\" data-table=\"{3}\">\n",
      run.id, Escape(run.model_spec), counts.planned, table_id);
  if (counts.planned > max_items) {
    out += fmt::format(
        "<p class=\"note\">Showing the first {} of {} samples (plumb report --max-items).</p>\n",
        max_items, counts.planned);
  }
  out += fmt::format(
      "<table class=\"sortable items\" "
      "id=\"{}\"><thead><tr><th>item</th><th>category</th><th>epoch</th><th>status</th>"
      "<th>prompt</th><th>reply</th><th>answer</th><th>judgments</th></tr></thead><tbody>\n",
      table_id);
  int shown = 0;
  for (const auto& s : samples) {
    if (shown++ >= max_items) break;
    std::string prompt = s.responses.empty() ? "" : LastUser(s.responses.front().request);
    const Grade* agentic = nullptr;
    for (const auto& g : s.grades)
      if (g.grader == "agentic@1") agentic = &g;
    bool tools = agentic != nullptr;
    for (const auto& r : s.responses) tools = tools || !r.completion.tool_calls.empty();
    std::string reply, transcript;
    if (tools) transcript = TranscriptHtml(s.responses, agentic);
    for (const auto& r : s.responses) {
      if (tools) break;
      if (s.responses.size() > 1) {
        reply += fmt::format("[turn {}]{}\n", r.turn + 1,
                             r.turn > 0 ? " user: " + LastUser(r.request) : "");
      }
      // Stored text is redacted when written; a database from before that is redacted here.
      reply += Redact(r.ok ? r.completion.text
                           : fmt::format("error: {}: {}", r.error_code, r.error_message));
      reply += "\n";
    }
    std::string answer, judgments;
    for (const auto& g : s.grades) {
      if (IsJudgeGrade(g)) {
        if (g.grader.find('|') != std::string::npos)
          continue;  // a panel member; the panel's grade says it
        std::string reason =
            g.details.is_object() && g.details.contains("reply") && g.details["reply"].is_string()
                ? g.details["reply"].get<std::string>()
                : g.error;
        judgments +=
            fmt::format("<div><b>{}</b>: {}{}</div>", Escape(g.grader), Escape(GradeValue(g)),
                        reason.empty() ? "" : "<div class=\"text\">" + Escape(reason) + "</div>");
      } else {
        std::string parsed = !g.details.is_object()         ? ""
                             : g.details.contains("answer") ? DumpJson(g.details["answer"])
                             : g.details.contains("tool")   ? g.details.value("tool", "")
                                                            : "";
        answer += fmt::format("<div><b>{}</b>: {}{}</div>", Escape(g.grader), Escape(GradeValue(g)),
                              parsed.empty()                 ? ""
                              : g.details.contains("answer") ? " answer " + Escape(parsed)
                                                             : " via " + Escape(parsed));
        if (g.status == GradeStatus::kError && !g.error.empty())
          answer += "<div class=\"error\">" + Escape(g.error) + "</div>";
      }
    }
    out += fmt::format(
        "<tr class=\"status-{}\"><td>{}</td><td>{}</td><td "
        "class=\"num\">{}</td><td{}>{}</td><td><div class=\"text\">{}</div></td>"
        "<td>{}</td><td>{}</td><td>{}</td></tr>\n",
        Escape(s.status), Escape(s.item_id), Escape(category[s.item_id]), s.epoch,
        s.status == "error" ? " class=\"error\"" : "", Escape(s.status), Escape(prompt),
        tools ? transcript : "<div class=\"text\">" + Escape(reply) + "</div>", answer, judgments);
  }
  return out + "</tbody></table>\n</details>\n";
}

// plumb say-do for every pair of shown runs of one model where one states what the other
// enacts (e.g. pacifaist-style and pacifaist-situated); empty when there is none.
Result<std::string> SayDoSections(const Store& store, const Leaderboard& board) {
  std::vector<std::pair<RunRecord, SayDoRoles>> runs;
  for (const auto& s : board.sections) {
    for (const auto& r : s.rows) {
      if (r.run.id == 0) continue;
      PLUMB_ASSIGN_OR_RETURN(SayDoRoles roles, SayDoRolesOf(store, r.run.id));
      runs.emplace_back(r.run, std::move(roles));
    }
  }
  std::string out;
  for (const auto& [stated, said] : runs) {
    for (const auto& [enacted, did] : runs) {
      if (stated.id == enacted.id || stated.suite_id == enacted.suite_id ||
          stated.model_spec != enacted.model_spec)
        continue;
      // A plain reference: clang 14 cannot capture a structured binding in a lambda.
      const std::set<std::string>& stated_ids = said.stated_ids;
      bool shared = std::any_of(did.enacted_ids.begin(), did.enacted_ids.end(),
                                [&](const std::string& id) { return stated_ids.count(id) > 0; });
      if (!shared) continue;
      auto r = ComputeSayDo(store, stated.id, enacted.id, MetricOptions{stated.seed});
      // A pair that cannot be compared (a mapping that does not fit) is named, not fatal.
      out += r ? SayDoHtml(*r)
               : fmt::format("<p class=\"note\">say-do of runs {} and {}: {}</p>\n", stated.id,
                             enacted.id, Escape(r.error().message()));
    }
  }
  if (out.empty()) return out;
  return "<h2 id=\"say-do\">Say-do: stated choices against actions</h2>\n" + out;
}

}  // namespace

Result<std::string> RenderReport(const Store& store, const ReportOptions& options) {
  LeaderboardQuery query;
  query.runs = options.runs;
  PLUMB_ASSIGN_OR_RETURN(Leaderboard board, BuildLeaderboard(store, query, options.baselines));
  int runs = 0;
  for (const auto& s : board.sections) {
    for (const auto& r : s.rows) runs += r.run.id != 0;
  }
  std::string body = fmt::format(
      "<h1>plumb report</h1>\n<p class=\"meta\">{} run{} of {} suite{} in {}; generated {} by "
      "plumb {} ({}).</p>\n",
      runs, runs == 1 ? "" : "s", board.sections.size(), board.sections.size() == 1 ? "" : "s",
      Escape(options.source), Escape(board.generated_at), PLUMB_VERSION, PLUMB_GIT_SHA);
  if (!board.sections.empty()) {
    body += "<nav>";
    for (const auto& s : board.sections) {
      body += fmt::format("<a href=\"#{}\">{} v{}</a>", Escape(html::SectionId(s)),
                          Escape(s.suite_id), s.suite_version);
    }
    body += "</nav>\n";
  }
  if (board.sections.empty()) body += "<p class=\"note\">No completed runs yet.</p>\n";
  body += html::OverviewHtml(board);
  for (const auto& s : board.sections) {
    // The stability columns for suites that some run answered under a perturbation grid.
    const bool grid = std::any_of(s.rows.begin(), s.rows.end(), [](const LeaderboardRow& r) {
      return r.consistency.has_value();
    });
    body += html::SectionHtml(s, html::RunLinks::kInPage, grid);
    body += CategoryHeatMap(s);
    PLUMB_ASSIGN_OR_RETURN(std::string stability, StabilitySections(store, s));
    body += stability;
    PLUMB_ASSIGN_OR_RETURN(std::string dist, Distributions(store, s));
    body += dist;
    body += "<h3>Items</h3>\n";
    for (const auto& r : s.rows) {
      if (r.run.id == 0) continue;
      if (!options.items_inline) {
        body += fmt::format(
            "<p class=\"drilldown-link\"><a href=\"/runs/{0}#run-{0}\">run {0}: {1}, {2} "
            "samples</a></p>\n",
            r.run.id, Escape(r.model_spec), r.run.n_samples);
        continue;
      }
      PLUMB_ASSIGN_OR_RETURN(std::string items, DrillDown(store, r.run, options.max_items));
      body += items;
    }
  }
  PLUMB_ASSIGN_OR_RETURN(std::string say_do, SayDoSections(store, board));
  body += say_do;
  body += fmt::format("<p class=\"footnote\">{}</p>\n", Escape(kRankFootnote));
  for (const auto& n : board.notes)
    body += fmt::format("<p class=\"note\">Note: {}</p>\n", Escape(n));
  return html::Page("plumb report", body);
}

}  // namespace plumb
