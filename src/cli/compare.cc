// plumb compare, plumb gate and plumb tag: paired comparisons of runs and the CI release gate.
#include "plumb/compare.h"

#include <fmt/format.h>

#include <cstdlib>
#include <fstream>

#include "cli/commands.h"
#include "plumb/regex.h"
#include "plumb/store.h"

namespace plumb::cli {
namespace {

// The comparison of `baseline` and `candidate` with the suite the candidate ran.
Result<RunComparison> Compare(const Context& ctx, const Store& store, int64_t baseline,
                              int64_t candidate, bool allow_suite_change, int resamples) {
  PLUMB_ASSIGN_OR_RETURN(RunRecord run, store.GetRun(candidate));
  PLUMB_ASSIGN_OR_RETURN(Suite suite, ctx.LoadSuiteOfRun(run));
  return CompareRuns(store, suite, baseline, candidate, allow_suite_change,
                     MetricOptions{run.seed, resamples});
}

}  // namespace

Action SetupCompare(CLI::App& app, Context& ctx) {
  struct Flags {
    std::string a, b, format = "text";
    bool allow_suite_change = false;
    int bootstrap = kComparisonResamples;
  };
  auto f = std::make_shared<Flags>();
  app.add_option("baseline", f->a, "Baseline run: id, 'latest' or a tag")->required();
  app.add_option("candidate", f->b, "Candidate run: id, 'latest' or a tag")->required();
  app.add_flag("--allow-suite-change", f->allow_suite_change,
               "Compare runs of different suite content on the items both answered");
  app.add_option("--format", f->format, "Output format")
      ->check(CLI::IsMember({"text", "md", "json"}));
  app.add_option("--bootstrap", f->bootstrap, "Bootstrap resamples")
      ->check(CLI::Range(100, 1000000))
      ->capture_default_str();
  return [f, &ctx]() {
    auto store = OpenStoreReadOnly(ctx.db_path);
    if (!store) return ReportError(store.error());
    auto b = ResolveRunId(ctx, **store, f->b);
    if (!b) return ReportError(b.error());
    auto run_b = (*store)->GetRun(*b);
    if (!run_b) return ReportError(run_b.error());
    auto a = ResolveRunId(ctx, **store, f->a, run_b->suite_id);
    if (!a) return ReportError(a.error());
    auto c = Compare(ctx, **store, *a, *b, f->allow_suite_change, f->bootstrap);
    if (!c) return ReportError(c.error());
    auto text = FormatComparison(*c, f->format);
    if (!text) return ReportError(text.error());
    std::fputs(text->c_str(), stdout);
    return kExitOk;
  };
}

Action SetupGate(CLI::App& app, Context& ctx) {
  struct Flags {
    std::string baseline;
    std::vector<std::string> candidates;
    std::string policy, format = "md", junit;
    bool allow_suite_change = false;
    int bootstrap = kComparisonResamples;
  };
  auto f = std::make_shared<Flags>();
  app.add_option("--baseline", f->baseline,
                 "Baseline: run id, tag (plumb tag) or model name/spec (its newest completed run "
                 "of the suite)")
      ->required();
  app.add_option("--candidate", f->candidates,
                 "Candidate run: id, 'latest' or a tag (repeatable: one per suite)")
      ->required();
  app.add_option(
      "--policy", f->policy,
      "Gate policy YAML (default: the primary metric may not drop by more than 2 points)");
  app.add_option("--format", f->format, "Output format")->check(CLI::IsMember({"md", "json"}));
  app.add_option("--junit", f->junit, "Also write JUnit XML to FILE");
  app.add_flag("--allow-suite-change", f->allow_suite_change,
               "Gate runs of different suite content on the items both answered");
  app.add_option("--bootstrap", f->bootstrap, "Bootstrap resamples")
      ->check(CLI::Range(100, 1000000))
      ->capture_default_str();
  return [f, &ctx]() {
    GatePolicy policy;
    if (!f->policy.empty()) {
      auto loaded = LoadGatePolicy(f->policy);
      if (!loaded) return ReportError(loaded.error());
      policy = std::move(*loaded);
    }
    auto store = OpenStoreReadOnly(ctx.db_path);
    if (!store) return ReportError(store.error());
    std::vector<RunComparison> comparisons;
    for (const auto& ref : f->candidates) {
      auto candidate = ResolveRunId(ctx, **store, ref);
      if (!candidate) return ReportError(candidate.error());
      auto run = (*store)->GetRun(*candidate);
      if (!run) return ReportError(run.error());
      auto baseline = ResolveRunId(ctx, **store, f->baseline, run->suite_id, /*models=*/true);
      if (!baseline) return ReportError(baseline.error());
      for (int64_t id : {*baseline, *candidate}) {
        auto r = (*store)->GetRun(id);
        if (!r) return ReportError(r.error());
        if (r->status != "completed") {
          return ReportError(InvalidArgument(fmt::format(
              "run {} is {}, not completed: finish it (plumb resume {}) before gating on it", id,
              r->status, id)));
        }
      }
      if (*baseline == *candidate) {
        return ReportError(InvalidArgument(
            fmt::format("--baseline and --candidate both name run {}", *candidate)));
      }
      auto c = Compare(ctx, **store, *baseline, *candidate, f->allow_suite_change, f->bootstrap);
      if (!c) return ReportError(c.error());
      comparisons.push_back(std::move(*c));
    }
    if (Status s = AddSayDoComparisons(**store, policy, comparisons,
                                       MetricOptions{comparisons.front().b.seed, f->bootstrap});
        !s.ok())
      return ReportError(s);
    auto result = EvaluateGate(comparisons, policy);
    if (!result) return ReportError(result.error());
    auto text = FormatGate(*result, f->format);
    auto md = FormatGate(*result, "md");
    auto junit = FormatGate(*result, "junit");
    if (!text || !md || !junit) return ReportError(Internal("cannot format the gate result"));
    if (!f->junit.empty()) {
      if (Status s = WriteOutputFile(f->junit, *junit, /*append=*/false); !s.ok())
        return ReportError(s);
    }
    if (const char* summary = std::getenv("GITHUB_STEP_SUMMARY");
        summary != nullptr && *summary != '\0') {
      if (Status s = WriteOutputFile(summary, *md + "\n", /*append=*/true); !s.ok())
        return ReportError(s);
    }
    std::fputs(text->c_str(), stdout);
    return result->exit_code;
  };
}

Action SetupTag(CLI::App& app, Context& ctx) {
  struct Flags {
    std::string run, name;
    bool list = false;
  };
  auto f = std::make_shared<Flags>();
  app.add_option("run", f->run, "Run id or 'latest'");
  app.add_option("name", f->name, "Tag, e.g. production (one run per suite carries it)");
  app.add_flag("--list", f->list, "List the tags");
  return [f, &ctx]() {
    if (f->list) {
      auto store = OpenStoreReadOnly(ctx.db_path);
      if (!store) return ReportError(store.error());
      auto tags = (*store)->ListTags();
      if (!tags) return ReportError(tags.error());
      for (const auto& t : *tags)
        std::printf("%s\t%s\trun %lld\t%s\n", t.name.c_str(), t.suite_id.c_str(),
                    static_cast<long long>(t.run_id), t.created_at.c_str());
      return kExitOk;
    }
    if (f->run.empty() || f->name.empty())
      return ReportError(InvalidArgument("plumb tag needs RUN and NAME (or --list)"));
    static const Regex kName = *Regex::Compile("[A-Za-z][A-Za-z0-9._-]{0,63}");
    if (!kName.FullMatch(f->name) || f->name == "latest") {
      return ReportError(
          InvalidArgument(fmt::format("tag '{}' must start with a letter, use letters, digits, "
                                      "'.', '_' or '-' (at most 64), and not be 'latest'",
                                      f->name)));
    }
    int64_t id = 0;
    RunRecord run;
    {
      auto store = OpenStoreReadOnly(ctx.db_path);  // nothing is created for a bad reference
      if (!store) return ReportError(store.error());
      auto resolved = ResolveRunId(ctx, **store, f->run);
      if (!resolved) return ReportError(resolved.error());
      auto record = (*store)->GetRun(*resolved);
      if (!record) return ReportError(record.error());
      id = *resolved;
      run = std::move(*record);
    }
    auto store = OpenStore(ctx.db_path);
    if (!store) return ReportError(store.error());
    if (Status s = (*store)->SetTag(f->name, id); !s.ok()) return ReportError(s);
    std::printf("tagged run %lld (%s, %s) as '%s'\n", static_cast<long long>(id),
                run.suite_id.c_str(), run.model_spec.c_str(), f->name.c_str());
    return kExitOk;
  };
}

}  // namespace plumb::cli
