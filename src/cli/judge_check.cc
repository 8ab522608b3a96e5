// plumb judge-check: run a judge grader on replies that humans have labelled and report how well
// it agrees (Krippendorff's alpha; accuracy and a confusion matrix for labels; mean absolute
// error for scores), so a team can prove a judge before letting it gate a release.
#include <fmt/format.h>

#include <condition_variable>
#include <fstream>
#include <mutex>

#include "cli/commands.h"
#include "plumb/json.h"
#include "plumb/stats.h"
#include "plumb/text.h"

namespace plumb::cli {
namespace {

struct GoldRow {
  Item item;
  std::string question, answer;
  std::optional<double> score;
  std::string label;
};

// {"id", "question", "answer", "score" | "label", "category"?, "item"?: {fields}, "metadata"?}
Result<std::vector<GoldRow>> ReadGold(const std::string& path, bool numeric) {
  std::ifstream in(path);
  if (!in) return NotFound(fmt::format("gold file '{}' cannot be opened", path));
  std::vector<GoldRow> rows;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    SourceMap source(path, n);
    PLUMB_ASSIGN_OR_RETURN(Json v, ParseJsonStrict(line, source.Where("")));
    if (!v.is_object())
      return InvalidArgument(source.Where("") + ": each line must be a JSON object");
    FieldReader r(v, source);
    GoldRow row;
    PLUMB_ASSIGN_OR_RETURN(auto id, r.OptString("id"));
    row.item.id = id.value_or(std::to_string(n));
    PLUMB_ASSIGN_OR_RETURN(row.question, r.String("question"));
    PLUMB_ASSIGN_OR_RETURN(row.answer, r.String("answer"));
    PLUMB_ASSIGN_OR_RETURN(auto category, r.OptString("category"));
    row.item.category = category.value_or("");
    const Json* fields = r.Get("item");
    row.item.fields = fields ? *fields : Json::object();
    const Json* metadata = r.Get("metadata");
    row.item.metadata = metadata ? *metadata : Json::object();
    PLUMB_ASSIGN_OR_RETURN(row.score, r.OptNumber("score"));
    PLUMB_ASSIGN_OR_RETURN(auto label, r.OptString("label"));
    row.label = ToUpper(label.value_or(""));
    if (numeric && !row.score) return r.Error("score", "is required: this judge gives numbers");
    if (!numeric && row.label.empty())
      return r.Error("label", "is required: this judge gives labels");
    PLUMB_RETURN_IF_ERROR(r.Finish());
    rows.push_back(std::move(row));
  }
  if (rows.empty()) return InvalidArgument(fmt::format("gold file '{}' has no rows", path));
  return rows;
}

}  // namespace

Action SetupJudgeCheck(CLI::App& app, Context& ctx) {
  struct Flags {
    std::string grader, gold, format = "text";
    ModelFlags m;
  };
  auto f = std::make_shared<Flags>();
  app.add_option("--grader", f->grader, "Judge grader id (graders/<id>)")->required();
  app.add_option("--gold", f->gold, "JSONL of human-labelled replies")->required();
  app.add_option("--format", f->format, "Output format")->check(CLI::IsMember({"text", "json"}));
  f->m.Add(app, /*model_flags=*/false);
  return [f, &ctx]() {
    auto grader = ctx.Judges().Get(f->grader);
    if (!grader) return ReportError(grader.error());
    if (f->m.judges.empty()) return ReportError(InvalidArgument("judge-check needs --judge SPEC"));
    auto rows = ReadGold(f->gold, (*grader)->numeric());
    if (!rows) return ReportError(rows.error());
    std::unique_ptr<HttpScheduler> scheduler = f->m.MakeScheduler();
    std::vector<std::unique_ptr<Backend>> owned;
    auto judges = f->m.MakeJudges(ctx, scheduler.get(), owned);
    if (!judges) return ReportError(judges.error());

    // Every (row, judge) judgment, collected from the callbacks.
    std::mutex mu;
    std::condition_variable cv;
    std::vector<std::vector<Grade>> got(rows->size(), std::vector<Grade>(judges->size()));
    size_t pending = rows->size() * judges->size();
    Status fatal;
    for (size_t i = 0; i < rows->size(); ++i) {
      const GoldRow& row = (*rows)[i];
      auto prompt = (*grader)->BuildPrompt(JudgeInput{row.item, row.question, row.answer, nullptr});
      for (size_t j = 0; j < judges->size(); ++j) {
        if (!prompt) {
          std::lock_guard<std::mutex> lock(mu);
          got[i][j].status = GradeStatus::kError;
          got[i][j].error = prompt.error().message();
          --pending;
          continue;
        }
        CallHints hints;
        hints.item_id = row.item.id;
        RequestJudgment(*grader, (*judges)[j], *prompt, hints, [&, i, j](Grade g, Status call) {
          std::lock_guard<std::mutex> lock(mu);
          if (!call.ok() && IsFatalForRun(call.code()) && fatal.ok()) fatal = call;
          got[i][j] = std::move(g);
          --pending;
          cv.notify_all();
        });
      }
    }
    {
      std::unique_lock<std::mutex> lock(mu);
      while (pending > 0) {
        cv.wait_for(lock, std::chrono::milliseconds(100));
        if ((Interrupted().load() || !fatal.ok())) {
          lock.unlock();
          scheduler->Cancel();
          lock.lock();
        }
      }
    }
    if (!fatal.ok()) return ReportError(fatal.WithPrefix("judge"));
    if (Interrupted().load()) return kExitInterrupted;

    // Agreement between the human and each judge, and over the whole panel.
    bool numeric = (*grader)->numeric();
    std::map<std::string, double> codes;
    auto code = [&](const std::string& label) {
      return codes.emplace(label, static_cast<double>(codes.size())).first->second;
    };
    Json report = {
        {"grader", (*grader)->IdVersion()}, {"rows", rows->size()}, {"judges", Json::array()}};
    std::vector<std::vector<std::optional<double>>> panel_units;
    for (size_t j = 0; j < judges->size(); ++j) {
      int errors = 0, unscored = 0, agree = 0, compared = 0;
      std::map<std::string, std::map<std::string, int>> confusion;
      std::vector<std::vector<std::optional<double>>> units;
      std::vector<std::string> unit_keys;
      std::vector<double> abs_errors;
      for (size_t i = 0; i < rows->size(); ++i) {
        const GoldRow& row = (*rows)[i];
        const Grade& g = got[i][j];
        if (panel_units.size() <= i)
          panel_units.push_back({numeric ? row.score : std::optional<double>(code(row.label))});
        if (g.status == GradeStatus::kError) {
          ++errors;
          panel_units[i].push_back(std::nullopt);
          continue;
        }
        if (g.status == GradeStatus::kUnscored) ++unscored;
        std::optional<double> judged;
        if (numeric && g.status == GradeStatus::kScored && g.value) judged = *g.value;
        if (!numeric) judged = code(g.label);
        panel_units[i].push_back(judged);
        if (!judged) continue;
        ++compared;
        if (numeric) {
          abs_errors.push_back(std::abs(*judged - *row.score));
        } else {
          confusion[row.label][g.label]++;
          agree += g.label == row.label;
        }
        units.push_back({numeric ? row.score : std::optional<double>(code(row.label)), judged});
        unit_keys.push_back(row.item.id);
      }
      Json r = {{"judge", (*judges)[j].spec},
                {"errors", errors},
                {"unscored", unscored},
                {"compared", compared}};
      // Every figure with its 95% interval: bootstrap over rows for alpha and the mean absolute
      // error, Wilson for accuracy.
      auto interval = [](const Metric& m) {
        return m.ci_low && m.ci_high ? Json::array({*m.ci_low, *m.ci_high}) : Json(nullptr);
      };
      Metric alpha = AlphaMetric("alpha", units, unit_keys, numeric, MetricOptions{});
      r["alpha"] = alpha.value ? Json(*alpha.value) : Json(nullptr);
      r["alpha_ci"] = interval(alpha);
      if (numeric) {
        Metric mae = BootstrapMetric(
            "mean_absolute_error", "", unit_keys,
            [abs_errors](const std::vector<int>& counts) -> std::optional<double> {
              double sum = 0, n = 0;
              for (size_t i = 0; i < abs_errors.size(); ++i)
                sum += counts[i] * abs_errors[i], n += counts[i];
              if (n == 0) return std::nullopt;
              return sum / n;
            },
            MetricOptions{});
        r["mean_absolute_error"] = mae.value ? Json(*mae.value) : Json(nullptr);
        r["mean_absolute_error_ci"] = interval(mae);
      } else {
        r["accuracy"] = compared ? Json(100.0 * agree / compared) : Json(nullptr);
        if (compared) {
          Interval ci = WilsonInterval(agree, compared);
          r["accuracy_ci"] = Json::array({100 * ci.low, 100 * ci.high});
        }
        r["confusion"] = confusion;
      }
      report["judges"].push_back(r);
    }
    std::vector<std::string> row_keys;
    for (const auto& row : *rows) row_keys.push_back(row.item.id);
    Metric panel_alpha = AlphaMetric("alpha", panel_units, row_keys, numeric, MetricOptions{});
    report["alpha_all_raters"] = panel_alpha.value ? Json(*panel_alpha.value) : Json(nullptr);
    report["alpha_all_raters_ci"] = panel_alpha.ci_low && panel_alpha.ci_high
                                        ? Json::array({*panel_alpha.ci_low, *panel_alpha.ci_high})
                                        : Json(nullptr);
    if (f->format == "json") {
      std::fputs((DumpJson(report, 2) + "\n").c_str(), stdout);
      return kExitOk;
    }
    std::string out = fmt::format("judge-check {} on {} labelled replies\n",
                                  report["grader"].get<std::string>(), rows->size());
    // "0.743 [0.612, 0.851]", "-" when undefined.
    auto figure = [](const Json& value, const Json& ci, const char* spec) {
      if (value.is_null()) return std::string("-");
      std::string text = fmt::format(fmt::runtime(spec), value.get<double>());
      if (ci.is_array())
        text += fmt::format(fmt::runtime(std::string(" [") + spec + ", " + spec + "]"),
                            ci[0].get<double>(), ci[1].get<double>());
      return text;
    };
    for (const auto& r : report["judges"]) {
      out += fmt::format(
          "  {}: alpha {}  {}  compared {}  errors {}  unscored {}\n",
          r["judge"].get<std::string>(), figure(r["alpha"], r["alpha_ci"], "{:.3f}"),
          numeric
              ? "MAE " + figure(r["mean_absolute_error"], r["mean_absolute_error_ci"], "{:.2f}")
              : "accuracy " + figure(r["accuracy"], r.value("accuracy_ci", Json()), "{:.1f}") + "%",
          r["compared"].get<int>(), r["errors"].get<int>(), r["unscored"].get<int>());
      if (!numeric) {
        for (const auto& [human, row] : r["confusion"].items()) {
          for (const auto& [judged, n] : row.items())
            out += fmt::format("    human {} -> judge {}: {}\n", human, judged, n.get<int>());
        }
      }
    }
    if (judges->size() > 1) {
      out +=
          fmt::format("  all raters (human + judges): alpha {}\n",
                      figure(report["alpha_all_raters"], report["alpha_all_raters_ci"], "{:.3f}"));
    }
    std::fputs(out.c_str(), stdout);
    return kExitOk;
  };
}

}  // namespace plumb::cli
