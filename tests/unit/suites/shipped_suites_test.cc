// Every suite shipped in benchmarks/ loads, and its key is balanced: constant-answer baselines
// score chance (+/- 5 points) on each choice metric and builtin/random scores near chance
// (within three standard errors). Agentic suites: the constant-position baselines sit at the
// chance of calling a tool at a random position, builtin/random near its own expectation.
#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <set>

#include "plumb/runner.h"
#include "subprocess.h"
#include "suites/agent_env.h"

namespace plumb {
namespace {

using testing::TempDir;

// The metrics of each kind that a constant answer should leave at chance.
const std::map<std::string, std::vector<std::string>> kChanceMetrics = {
    {"choice", {"aligned_rate"}},
    {"paired_choice", {"principled_rate"}},
    {"opinion", {"match_rate", "control_match_rate"}},
    {"contrast", {"harm_avoidance", "control_pragmatism"}},
};

double ChanceLevel(const Suite& suite) {
  double sum = 0;
  int n = 0;
  for (const auto& item : suite.items) {
    if (!item.scored) continue;
    const Json& f = item.fields;
    double options = f.contains("options") ? static_cast<double>(f["options"].size()) : 2.0;
    double right = f.contains("aligned") ? static_cast<double>(f["aligned"].size()) : 1.0;
    sum += right / options;
    ++n;
  }
  return 100 * sum / n;
}

TEST(ShippedSuites, LoadAndSitAtChanceForBaselines) {
  SuiteKindRegistry kinds("suite kind");
  GraderRegistry graders("grader kind");
  BackendRegistry backends("backend kind");
  RegisterBuiltinSuiteKinds(kinds);
  RegisterBuiltinGraders(graders);
  RegisterBuiltinBackends(backends);
  auto refs = DiscoverSuites({std::filesystem::path(PLUMB_TEST_SOURCE_DIR) / "benchmarks"});
  ASSERT_TRUE(refs.has_value()) << refs.error().message();
  ASSERT_GE(refs->size(), 5u);
  JudgeLibrary judges({std::filesystem::path(PLUMB_TEST_SOURCE_DIR) / "graders"});
  TempDir tmp;
  auto store = std::move(OpenSqliteStore(tmp.path() + "/r.db")).value();
  std::atomic<bool> interrupted{false};
  int checked = 0;
  for (const auto& ref : *refs) {
    auto suite = LoadSuite(ref.manifest, kinds, graders, &judges);
    ASSERT_TRUE(suite.has_value()) << suite.error().message();
    if (suite->kind->NeedsJudges())
      continue;  // judged suites: tests/unit/suites/judged_kinds_test.cc
    auto names = kChanceMetrics.find(suite->manifest.kind);
    for (const char* spec : {"builtin/first", "builtin/last", "builtin/random"}) {
      BackendContext ctx;
      ctx.spec = spec;
      auto backend = CreateBackend(backends, ctx);
      RunOptions options;
      options.model_spec = spec;
      options.progress = ProgressMode::kNone;
      auto s = RunSuite(*suite, **backend, nullptr, *store, options, interrupted);
      ASSERT_TRUE(s.has_value());
      EXPECT_EQ(s->status, "completed") << ref.id;
      EXPECT_EQ(s->errors, 0) << ref.id << " " << spec;
      // Every metric keeps a model that reproduces its value after the kind returned (the
      // statistic owns its data), with one distinct key per cluster.
      for (const auto& m : s->metrics) {
        if (!m.model) continue;
        std::set<std::string> keys(m.model->keys.begin(), m.model->keys.end());
        EXPECT_EQ(keys.size(), m.model->keys.size()) << ref.id << " " << m.name;
        if (!m.value) continue;
        auto v = m.model->statistic(std::vector<int>(m.model->keys.size(), 1));
        ASSERT_TRUE(v.has_value()) << ref.id << " " << m.name;
        EXPECT_NEAR(*v, *m.value, 1e-9) << ref.id << " " << m.name << " [" << m.category << "]";
      }
      if (names == kChanceMetrics.end()) continue;  // e.g. pushback: no options, no chance level
      double chance = ChanceLevel(*suite);
      for (const auto& m : s->metrics) {
        if (!m.category.empty()) continue;
        if (std::find(names->second.begin(), names->second.end(), m.name) == names->second.end())
          continue;
        ASSERT_TRUE(m.value.has_value()) << ref.id << " " << m.name;
        double tolerance =
            std::string(spec) == "builtin/random"
                ? 300 * std::sqrt(chance / 100 * (1 - chance / 100) / static_cast<double>(m.n))
                : 5;
        EXPECT_NEAR(*m.value, chance, tolerance) << ref.id << " " << spec << " " << m.name;
        ++checked;
      }
    }
  }
  EXPECT_EQ(checked, 3 * 6);  // 3 baselines x (1 + 1 + 2 + 2) chance metrics
}

// An agentic item's chances, from its environment: a call of each tool as the baselines make it
// (schema-valid arguments), replayed as a one-call episode. `position`: the mean aligned share
// over the tools (a constant-position caller under a uniform order); `random`: aligned calls
// among the decisive ones (a caller picking tools at random until one is decisive).
struct AgenticChance {
  double position = 0, random = 0;
};

AgenticChance ChanceOf(const Item& item, Backend& first) {
  SourceMap source("item " + item.id, item.line);
  std::map<std::string, std::string> names;
  auto env = suites::AgentEnvironment::Read(item, ItemSource{source, names});
  EXPECT_TRUE(env.has_value()) << item.id;
  if (!env) return {};
  double aligned = 0, decisive = 0;
  const auto& tools = (*env)->tools();
  for (const auto& tool : tools) {
    ModelCall call;
    call.tools = {tool.spec};
    Exchange e;
    first.Submit(call, [&](Result<Completion> c, const CallReport&) {
      if (c) e.completion = std::move(*c);
    });
    suites::Episode episode = (*env)->Replay({e});
    EXPECT_EQ(episode.invalid_calls, 0) << item.id << " " << tool.spec.name;
    aligned += episode.outcome() == suites::Outcome::kAligned;
    decisive += episode.decisive.has_value();
  }
  return {aligned / static_cast<double>(tools.size()), decisive > 0 ? aligned / decisive : 0};
}

TEST(ShippedSuites, AgenticSuitesSitAtChanceForBaselines) {
  SuiteKindRegistry kinds("suite kind");
  GraderRegistry graders("grader kind");
  BackendRegistry backends("backend kind");
  RegisterBuiltinSuiteKinds(kinds);
  RegisterBuiltinGraders(graders);
  RegisterBuiltinBackends(backends);
  TempDir tmp;
  auto store = std::move(OpenSqliteStore(tmp.path() + "/r.db")).value();
  std::atomic<bool> interrupted{false};
  for (const char* id : {"pacifaist-situated", "agentic-oversight"}) {
    auto manifest = std::filesystem::path(PLUMB_TEST_SOURCE_DIR) / "benchmarks" / id / "suite.yaml";
    auto suite = LoadSuite(manifest, kinds, graders, nullptr);
    ASSERT_TRUE(suite.has_value()) << suite.error().message();
    BackendContext first_ctx;
    first_ctx.spec = "builtin/first";
    auto first = CreateBackend(backends, first_ctx);
    AgenticChance chance;
    for (const auto& item : suite->items) {
      AgenticChance c = ChanceOf(item, **first);
      chance.position += c.position / static_cast<double>(suite->items.size());
      chance.random += c.random / static_cast<double>(suite->items.size());
    }
    for (const char* spec : {"builtin/first", "builtin/last", "builtin/random", "builtin/refuse"}) {
      BackendContext ctx;
      ctx.spec = spec;
      auto backend = CreateBackend(backends, ctx);
      RunOptions options;
      options.model_spec = spec;
      options.progress = ProgressMode::kNone;
      auto s = RunSuite(*suite, **backend, nullptr, *store, options, interrupted);
      ASSERT_TRUE(s.has_value());
      EXPECT_EQ(s->errors, 0) << id << " " << spec;
      std::map<std::string, Metric> m;
      for (const auto& metric : s->metrics)
        if (metric.category.empty()) m[metric.name] = metric;
      double rate = m["aligned_action_rate"].value.value_or(-1);
      double n = static_cast<double>(m["aligned_action_rate"].n);
      std::string which(spec);
      double expected = which == "builtin/random"   ? 100 * chance.random
                        : which == "builtin/refuse" ? 0
                                                    : 100 * chance.position;
      double p = expected / 100;
      double tolerance = std::max(3 * 100 * std::sqrt(p * (1 - p) / n), 1e-9);
      EXPECT_NEAR(rate, expected, tolerance) << id << " " << spec;
      if (which == "builtin/refuse") {
        EXPECT_DOUBLE_EQ(*m["no_action_rate"].value, 100) << id;
      }
      if (which != "builtin/random") {
        EXPECT_DOUBLE_EQ(*m["invalid_call_rate"].value, 0) << id;
      }
    }
  }
}

}  // namespace
}  // namespace plumb
