// plumb db copy --from A --to B [--run RUN]...: copies finished runs (items, samples, responses,
// scores and judgments, metrics, usage, tags) between two stores, SQLite or PostgreSQL, through
// the Store interface. Idempotent: a run is known by its UUID, so copying twice adds nothing.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "cli/commands.h"
#include "plumb/log.h"
#include "plumb/store.h"

namespace plumb::cli {
namespace {

// One run into `to`; returns its id there.
Result<int64_t> CopyRun(const Store& from, Store& to, const RunRecord& run,
                        const std::map<std::string, int64_t>& copied_by_uuid,
                        const std::map<int64_t, std::string>& uuid_of) {
  PLUMB_ASSIGN_OR_RETURN(auto items, from.GetItems(run.id));
  RunRecord copy = run;
  copy.id = 0;
  copy.parent_run_id.reset();
  if (run.parent_run_id) {  // the re-graded run, when it is in `to` too
    auto u = uuid_of.find(*run.parent_run_id);
    if (u != uuid_of.end()) {
      auto there = copied_by_uuid.find(u->second);
      if (there != copied_by_uuid.end()) copy.parent_run_id = there->second;
    }
  }
  copy.status = "running";
  PLUMB_ASSIGN_OR_RETURN(int64_t id, to.CreateRun(copy, items));
  // Two passes, so memory stays bounded by a page whatever the run's size: the plan first
  // (planned rows are written before results), then every sample's results.
  std::vector<PlannedSample> planned;
  SampleScan plan_only;
  plan_only.grades = false;
  PLUMB_RETURN_IF_ERROR(from.ScanSamples(run.id, plan_only, [&](SampleRecord&& s) {
    planned.push_back(PlannedSample{s.item_id, s.epoch, std::move(s.presentation)});
    if (planned.size() >= 10'000) to.EnqueuePlanned(id, std::exchange(planned, {}));
    return true;
  }));
  to.EnqueuePlanned(id, std::move(planned));
  SampleScan everything;
  everything.responses = true;
  PLUMB_RETURN_IF_ERROR(from.ScanSamples(run.id, everything, [&](SampleRecord&& s) {
    if (s.status == "pending" && s.responses.empty()) return true;
    SampleResult r;
    r.item_id = s.item_id;
    r.epoch = s.epoch;
    r.ok = s.status == "done";
    r.partial = s.status == "pending";  // the turns of a conversation under way
    r.responses = std::move(s.responses);
    r.grades = std::move(s.grades);
    to.Enqueue(id, std::move(r));
    return true;
  }));
  PLUMB_RETURN_IF_ERROR(to.Flush());
  PLUMB_ASSIGN_OR_RETURN(auto metrics, from.GetMetrics(run.id));
  PLUMB_RETURN_IF_ERROR(to.PutMetrics(id, metrics));
  PLUMB_RETURN_IF_ERROR(to.PutUsage(id, run.usage));
  PLUMB_RETURN_IF_ERROR(to.FinishRun(id, run.status, run.error, run.finished_at));
  return id;
}

}  // namespace

namespace {
Action SetupDbCopy(CLI::App& app, Context& ctx) {
  struct Flags {
    std::string from, to;
    std::vector<std::string> runs;
  };
  auto f = std::make_shared<Flags>();
  app.add_option("--from", f->from, "The store to copy from (a SQLite file or postgresql:// URL)")
      ->required();
  app.add_option("--to", f->to, "The store to copy into (created when missing)")->required();
  app.add_option("--run", f->runs,
                 "A run of --from (id, 'latest' or a tag; repeatable; default: all)");
  return [f, &ctx]() {
    auto from = OpenStoreReadOnly(f->from);
    if (!from) return ReportError(from.error());
    auto to = OpenStore(f->to);
    if (!to) return ReportError(to.error());
    auto source_runs = (*from)->ListRuns(RunFilter{});
    if (!source_runs) return ReportError(source_runs.error());
    std::set<int64_t> wanted;
    for (const auto& ref : f->runs) {
      auto id = ResolveRunId(ctx, **from, ref);
      if (!id) return ReportError(id.error());
      wanted.insert(*id);
    }
    auto target_runs = (*to)->ListRuns(RunFilter{});
    if (!target_runs) return ReportError(target_runs.error());
    std::map<std::string, int64_t> in_target;
    for (const auto& r : *target_runs) in_target[r.uuid] = r.id;
    std::map<int64_t, std::string> uuid_of;
    for (const auto& r : *source_runs) uuid_of[r.id] = r.uuid;
    // Oldest first, so a re-graded run is copied before its rescore.
    std::vector<RunRecord> runs = *source_runs;
    std::sort(runs.begin(), runs.end(),
              [](const RunRecord& a, const RunRecord& b) { return a.id < b.id; });
    int copied = 0, skipped = 0;
    std::map<int64_t, int64_t> new_ids;
    for (const auto& run : runs) {
      if (!wanted.empty() && !wanted.count(run.id)) continue;
      if (run.status == "running") {
        std::fprintf(stderr,
                     "plumb: run %lld is still running: not copied (copy it once it ends)\n",
                     static_cast<long long>(run.id));
        ++skipped;
        continue;
      }
      auto there = in_target.find(run.uuid);
      if (there != in_target.end()) {
        std::fprintf(stdout, "run %lld: already there as run %lld\n",
                     static_cast<long long>(run.id), static_cast<long long>(there->second));
        new_ids[run.id] = there->second;
        ++skipped;
        continue;
      }
      auto id = CopyRun(**from, **to, run, in_target, uuid_of);
      if (!id) return ReportError(id.error().WithPrefix(fmt::format("run {}", run.id)));
      in_target[run.uuid] = *id;
      new_ids[run.id] = *id;
      std::fprintf(stdout, "run %lld: copied as run %lld (%s, %s)\n",
                   static_cast<long long>(run.id), static_cast<long long>(*id),
                   run.suite_id.c_str(), run.model_spec.c_str());
      ++copied;
    }
    // Tags follow their runs, unless the target already uses the name for that suite.
    auto source_tags = (*from)->ListTags();
    auto target_tags = (*to)->ListTags();
    if (!source_tags || !target_tags)
      return ReportError(!source_tags ? source_tags.error() : target_tags.error());
    std::set<std::pair<std::string, std::string>> taken;
    for (const auto& t : *target_tags) taken.insert({t.name, t.suite_id});
    for (const auto& t : *source_tags) {
      auto id = new_ids.find(t.run_id);
      if (id == new_ids.end() || taken.count({t.name, t.suite_id})) continue;
      if (Status s = (*to)->SetTag(t.name, id->second); !s.ok()) return ReportError(s);
    }
    std::fprintf(stdout, "%d runs copied, %d skipped\n", copied, skipped);
    return kExitOk;
  };
}
}  // namespace

Action SetupDb(CLI::App& app, Context& ctx) {
  app.require_subcommand(1);
  CLI::App* copy = app.add_subcommand(
      "copy", "Copy runs between results databases (SQLite or PostgreSQL), idempotently");
  Action run_copy = SetupDbCopy(*copy, ctx);
  return run_copy;
}

}  // namespace plumb::cli
