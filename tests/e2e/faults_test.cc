// issue 11: the fault matrix. A misbehaving server (tests/support/fault_server.h) plays each
// fault on 10% of the attempts, then all of them mixed; every run must end with every sample
// answered exactly once (0 lost, 0 duplicated) and the metrics of a clean run.
#include <gtest/gtest.h>

#include "e2e.h"
#include "fault_server.h"
#include "plumb/hash.h"
#include "plumb/store.h"

namespace plumb::testing {
namespace {

constexpr int kItems = 200;

std::string AnswerOf(const std::string& prompt) {
  return std::string("Answer: ") + "ABCD"[DeriveSeed(7, prompt) % 4] + "\nBecause.";
}

struct Outcome {
  Spawned run;
  std::vector<Metric> metrics;
  std::vector<SampleRecord> samples;
};

Outcome RunAgainst(const FaultServer& server, const TempDir& tmp, const std::string& manifest,
                   const std::string& db) {
  Outcome o;
  o.run = Plumb(tmp.path(), {"--db",
                             db,
                             "run",
                             "--suite",
                             manifest,
                             "--model",
                             "openai/m",
                             "--base-url",
                             server.base_url(),
                             "--concurrency",
                             "16",
                             // Long enough for a 2 MB reply on a loaded machine under the
                             // sanitizers (a timeout there is a legitimate second send).
                             "--timeout",
                             "8",
                             "--max-retries",
                             "8",
                             "--retry-base-ms",
                             "10",
                             "--cache",
                             "never",
                             "--progress",
                             "none"});
  auto store = OpenSqliteStoreReadOnly(db);
  if (!store) return o;
  o.metrics = *(*store)->GetMetrics(1);
  o.samples = *(*store)->GetSamples(1);
  return o;
}

TEST(Faults, Issue11EachFaultAtTenPercentAndAllMixedLoseAndRepeatNothing) {
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "faults", kItems, "shuffle: true\n");
  FaultServer clean_server([](const std::string&, int) { return Fault::kNone; }, AnswerOf);
  Outcome clean = RunAgainst(clean_server, tmp, manifest, tmp.path() + "/clean.db");
  ASSERT_EQ(clean.run.exit_code, 0) << clean.run.err;
  ASSERT_FALSE(clean.metrics.empty());

  std::vector<std::vector<Fault>> cases;
  for (Fault f : AllFaults()) cases.push_back({f});
  cases.push_back(AllFaults());  // all mixed
  int index = 0;
  for (const auto& faults : cases) {
    std::string name = faults.size() == 1 ? FaultName(faults[0]) : "all mixed";
    uint64_t salt = static_cast<uint64_t>(++index);
    FaultServer server(
        [&](const std::string& prompt, int attempt) {
          uint64_t h = DeriveSeed(salt, prompt, static_cast<uint64_t>(attempt));
          if (h % 10 != 0) return Fault::kNone;
          return faults[(h / 10) % faults.size()];
        },
        AnswerOf);
    Outcome o = RunAgainst(server, tmp, manifest, tmp.path() + "/" + std::to_string(index) + ".db");
    ASSERT_EQ(o.run.exit_code, 0) << name << ": " << o.run.err;
    int played = 0;
    for (const auto& [f, n] : server.faults()) played += n;
    EXPECT_GT(played, 0) << name << ": no fault was played";
    RecordProperty(name, played);
    // 0 lost: every sample answered; 0 duplicated: one good reply per prompt, one response row.
    ASSERT_EQ(o.samples.size(), static_cast<size_t>(kItems)) << name;
    for (const auto& s : o.samples) {
      EXPECT_EQ(s.status, "done") << name << ": " << s.item_id;
      EXPECT_EQ(s.responses.size(), 1u) << name << ": " << s.item_id;
    }
    auto good = server.good_replies();
    EXPECT_EQ(good.size(), static_cast<size_t>(kItems)) << name;
    for (const auto& [prompt, n] : good) EXPECT_EQ(n, 1) << name << ": " << prompt;
    ASSERT_EQ(o.metrics.size(), clean.metrics.size()) << name;
    for (size_t i = 0; i < clean.metrics.size(); ++i) {
      EXPECT_EQ(o.metrics[i].name, clean.metrics[i].name) << name;
      EXPECT_EQ(o.metrics[i].value, clean.metrics[i].value)
          << name << ": " << clean.metrics[i].name;
      EXPECT_EQ(o.metrics[i].n, clean.metrics[i].n) << name;
    }
    std::printf("fault matrix: %-22s faults played %3d, requests %4d for %d samples\n",
                name.c_str(), played, server.requests(), kItems);
  }
}

}  // namespace
}  // namespace plumb::testing
