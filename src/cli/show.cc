// plumb show RUN|latest: a run and its metrics.
#include <fmt/format.h>
#include <fmt/ranges.h>

#include <tuple>

#include "cli/commands.h"
#include "plumb/report.h"
#include "plumb/store.h"

namespace plumb::cli {

Result<int64_t> ResolveRunId(const Context& ctx, const Store& store, const std::string& ref,
                             const std::string& suite_id, bool models) {
  if (ref.empty())
    return InvalidArgument("an empty run reference (use a run id, 'latest' or a tag)");
  if (ref.find_first_not_of("0123456789") == std::string::npos) {
    try {
      long long id = std::stoll(ref);
      if (id > 0) return static_cast<int64_t>(id);
    } catch (const std::exception&) {
    }
    return InvalidArgument(fmt::format("'{}' is not a run id (a positive number)", ref));
  }
  if (ref == "latest" && suite_id.empty()) return store.LatestRunId();
  PLUMB_ASSIGN_OR_RETURN(auto runs, store.ListRuns(RunFilter{suite_id, ""}));
  if (ref == "latest") {
    if (runs.empty()) return NotFound(fmt::format("no runs of suite '{}' yet", suite_id));
    return runs.back().id;
  }
  PLUMB_ASSIGN_OR_RETURN(auto tags, store.ListTags());
  std::vector<TagRecord> named;
  for (const auto& t : tags) {
    if (t.name == ref && (suite_id.empty() || t.suite_id == suite_id)) named.push_back(t);
  }
  if (named.size() == 1) return named.front().run_id;
  if (named.size() > 1) {
    std::vector<std::string> where;
    for (const auto& t : named) where.push_back(fmt::format("{} (run {})", t.suite_id, t.run_id));
    return InvalidArgument(fmt::format("tag '{}' names runs of several suites: {}; use a run id",
                                       ref, fmt::join(where, ", ")));
  }
  if (models) {
    std::string spec = ctx.ResolveSpec(ref);
    std::optional<int64_t> found;
    for (const auto& r : runs) {
      if (r.status == "completed" && (r.model_spec == spec || r.model_spec == ref)) found = r.id;
    }
    if (found) return *found;
  }
  return NotFound(fmt::format("'{}' is not a run id, 'latest', {}{}", ref,
                              models ? "a tag or a model with a completed run" : "or a tag",
                              suite_id.empty() ? "" : " of suite '" + suite_id + "'"));
}

Action SetupShow(CLI::App& app, Context& ctx) {
  auto run = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("text");
  app.add_option("run", *run, "Run id, 'latest' or a tag")->required();
  app.add_option("--format", *format, "Output format")->check(CLI::IsMember({"text", "json"}));
  return [run, format, &ctx]() {
    auto store = OpenStoreReadOnly(ctx.db_path);
    if (!store) return ReportError(store.error());
    auto id = ResolveRunId(ctx, **store, *run);
    if (!id) return ReportError(id.error());
    auto record = (*store)->GetRun(*id);
    if (!record) return ReportError(record.error());
    auto metrics = (*store)->GetMetrics(*id);
    if (!metrics) return ReportError(metrics.error());
    std::vector<BaselineScores> baselines;
    std::string note;
    if (auto suite = ctx.LoadSuiteOfRun(*record); suite) {
      std::tie(baselines, note) = BaselinesOf(ctx, **store, *suite, *record, /*write_cache=*/false);
    } else {
      note = "not available: " + suite.error().message();
    }
    auto text = FormatRun(*record, *metrics, *format, baselines, note);
    if (!text) return ReportError(text.error());
    std::fputs(text->c_str(), stdout);
    return kExitOk;
  };
}

}  // namespace plumb::cli
