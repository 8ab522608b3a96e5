// Every suite shipped in benchmarks/ loads, and its key is balanced: the constant-answer
// baselines score chance (+/- 5 points) and builtin/random scores near chance.
#include <gtest/gtest.h>

#include "plumb/runner.h"
#include "subprocess.h"

namespace plumb {
namespace {

using testing::TempDir;

std::optional<double> PrimaryValue(const RunSummary& s, const std::string& name) {
  for (const auto& m : s.metrics) {
    if (m.name == name && m.category.empty()) return m.value;
  }
  return std::nullopt;
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
  ASSERT_FALSE(refs->empty());
  TempDir tmp;
  auto store = std::move(OpenSqliteStore(tmp.path() + "/r.db")).value();
  std::atomic<bool> interrupted{false};
  for (const auto& ref : *refs) {
    auto suite = LoadSuite(ref.manifest, kinds, graders);
    ASSERT_TRUE(suite.has_value()) << suite.error().message();
    if (suite->manifest.kind != "choice") continue;
    double chance = 0;
    int scored = 0;
    for (const auto& item : suite->items) {
      if (!item.scored) continue;
      chance += static_cast<double>(item.fields["aligned"].size()) / item.fields["options"].size();
      ++scored;
    }
    chance = 100 * chance / scored;
    for (const char* spec : {"builtin/first", "builtin/last", "builtin/random"}) {
      BackendContext ctx;
      ctx.spec = spec;
      auto backend = CreateBackend(backends, ctx);
      ASSERT_TRUE(backend.has_value());
      RunOptions options;
      options.model_spec = spec;
      options.progress = ProgressMode::kNone;
      auto s = RunSuite(*suite, **backend, nullptr, *store, options, interrupted);
      ASSERT_TRUE(s.has_value());
      auto value = PrimaryValue(*s, suite->kind->PrimaryMetric());
      ASSERT_TRUE(value.has_value()) << ref.id;
      // random: 3 standard errors of a binomial at chance.
      double tolerance = std::string(spec) == "builtin/random"
                             ? 300 * std::sqrt(chance / 100 * (1 - chance / 100) / scored)
                             : 5;
      EXPECT_NEAR(*value, chance, tolerance) << ref.id << " " << spec;
    }
  }
}

}  // namespace
}  // namespace plumb
