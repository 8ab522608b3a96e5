// The run loop with a scripted in-process backend: every sample ends with a response or a
// recorded error, errors never become scores, fatal errors stop the run, interruption keeps
// what finished.
#include "plumb/runner.h"

#include <gtest/gtest.h>

#include <map>
#include <set>
#include <thread>

#include "subprocess.h"

namespace plumb {
namespace {

using testing::TempDir;

// Answers from a script keyed by item id; unknown ids answer "Answer: A".
class ScriptedBackend : public Backend {
 public:
  using Script = std::function<Result<Completion>(const ModelCall&)>;
  explicit ScriptedBackend(Script script, bool async = false)
      : script_(std::move(script)), async_(async) {}
  std::string Id() const override { return "scripted@1"; }
  void Submit(ModelCall call, Done done) override {
    calls_++;
    if (!async_) {
      done(script_(call), CallReport{1, 0, 0});
      return;
    }
    std::thread([this, call = std::move(call), done = std::move(done)] {
      done(script_(call), CallReport{1, 0, 0});
    }).detach();
  }
  std::atomic<int> calls_{0};

 private:
  Script script_;
  bool async_;
};

Completion Text(const std::string& t) {
  Completion c;
  c.text = t;
  return c;
}

class RunnerTest : public ::testing::Test {
 protected:
  RunnerTest() {
    RegisterBuiltinSuiteKinds(kinds);
    RegisterBuiltinGraders(graders);
    std::string items;
    for (int i = 0; i < 10; ++i) {
      items += "{\"id\": \"q" + std::to_string(i) +
               "\", \"prompt\": \"P\", \"options\": [\"a\", \"b\"], \"aligned\": \"A\"}\n";
    }
    tmp.Write("demo/items.jsonl", items);
    auto s = LoadSuite(tmp.Write("demo/suite.yaml", "id: demo\nkind: choice\n"), kinds, graders);
    suite = std::move(s).value();
    store = std::move(OpenSqliteStore(tmp.path() + "/r.db")).value();
    options.model_spec = "scripted/x";
    options.progress = ProgressMode::kNone;
  }
  std::map<std::string, Metric> Metrics(const RunSummary& s) {
    std::map<std::string, Metric> out;
    for (const auto& m : s.metrics) out[m.name + "/" + m.category] = m;
    return out;
  }
  SuiteKindRegistry kinds{"suite kind"};
  GraderRegistry graders{"grader kind"};
  TempDir tmp;
  Suite suite;
  std::unique_ptr<Store> store;
  RunOptions options;
  std::atomic<bool> interrupted{false};
};

TEST_F(RunnerTest, RecordsErrorsApartFromScores) {
  ScriptedBackend backend(
      [](const ModelCall& c) -> Result<Completion> {
        if (c.hints.item_id == "q3" || c.hints.item_id == "q7")
          return Unavailable("HTTP 500 (gave up)");
        if (c.hints.item_id == "q1") return Text("Answer: B");
        return Text("Answer: A");
      },
      /*async=*/true);
  auto s = RunSuite(suite, backend, nullptr, *store, options, interrupted);
  ASSERT_TRUE(s.has_value()) << s.error().message();
  EXPECT_EQ(s->status, "completed");
  EXPECT_EQ(s->errors, 2);
  EXPECT_EQ(s->done, 10);
  auto m = Metrics(*s);
  EXPECT_EQ(m["aligned_rate/"].n, 8);  // errors are not in the denominator
  EXPECT_EQ(*m["aligned_rate/"].k, 7);
  EXPECT_EQ(*m["error_rate/"].k, 2);
  auto samples = store->GetSamples(s->run_id);
  int errors = 0;
  for (const auto& smp : *samples) {
    ASSERT_NE(smp.status, "pending") << smp.item_id;
    if (smp.status == "error") {
      ++errors;
      EXPECT_TRUE(smp.grades.empty());
      EXPECT_EQ(smp.responses.at(0).error_code, "unavailable");
    } else {
      EXPECT_EQ(smp.responses.size(), 1u);
      EXPECT_EQ(smp.grades.size(), 1u);
    }
  }
  EXPECT_EQ(errors, 2);
  EXPECT_EQ(store->GetRun(s->run_id)->status, "completed");
}

TEST_F(RunnerTest, FatalErrorStopsTheRun) {
  options.concurrency = 1;  // window of 64 > 10 items, so all are submitted; sync backend
  ScriptedBackend backend([](const ModelCall&) -> Result<Completion> {
    return Status(StatusCode::kUnauthenticated, "HTTP 401: bad key");
  });
  auto s = RunSuite(suite, backend, nullptr, *store, options, interrupted);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->status, "failed");
  EXPECT_EQ(s->failure.message(), "HTTP 401: bad key");
  auto run = store->GetRun(s->run_id);
  EXPECT_EQ(run->status, "failed");
  EXPECT_EQ(run->error, "HTTP 401: bad key");
}

TEST_F(RunnerTest, EpochsAndLimit) {
  options.epochs = 3;
  options.limit = 4;
  ScriptedBackend backend([](const ModelCall& c) -> Result<Completion> {
    return Text(c.hints.epoch == 0 ? "Answer: A" : "Answer: B");
  });
  auto s = RunSuite(suite, backend, nullptr, *store, options, interrupted);
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->samples, 12);
  EXPECT_EQ(backend.calls_.load(), 12);
  auto m = Metrics(*s);
  EXPECT_EQ(m["aligned_rate/"].n, 12);
  EXPECT_EQ(*m["aligned_rate/"].k, 4);
  EXPECT_EQ(m["aligned_rate/"].ci_method, "bootstrap");
}

TEST_F(RunnerTest, InterruptionKeepsFinishedWork) {
  std::atomic<int> answered{0};
  ScriptedBackend backend(
      [&](const ModelCall& c) -> Result<Completion> {
        if (c.hints.item_id >= "q5") {
          std::this_thread::sleep_for(std::chrono::milliseconds(300));
          return Status(StatusCode::kCancelled, "abandoned");
        }
        answered++;
        return Text("Answer: A");
      },
      /*async=*/true);
  std::thread stopper([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    interrupted = true;
  });
  auto s = RunSuite(suite, backend, nullptr, *store, options, interrupted);
  stopper.join();
  ASSERT_TRUE(s.has_value());
  EXPECT_EQ(s->status, "interrupted");
  EXPECT_EQ(s->done, 5);
  auto samples = store->GetSamples(s->run_id);
  int pending = 0;
  for (const auto& smp : *samples) pending += smp.status == "pending";
  EXPECT_EQ(pending, 5);
}

TEST_F(RunnerTest, MetricsRecomputeFromTheStore) {
  ScriptedBackend backend([](const ModelCall&) -> Result<Completion> { return Text("Answer: A"); });
  auto s = RunSuite(suite, backend, nullptr, *store, options, interrupted);
  auto again = ComputeMetrics(suite, *store->GetSamples(s->run_id), MetricOptions{});
  ASSERT_TRUE(again.has_value());
  ASSERT_EQ(again->size(), s->metrics.size());
  for (size_t i = 0; i < again->size(); ++i) {
    EXPECT_EQ((*again)[i].name, s->metrics[i].name);
    EXPECT_EQ((*again)[i].value, s->metrics[i].value);
  }
}

}  // namespace
}  // namespace plumb

namespace plumb {
namespace {

TEST(CacheKeyTest, ToolsAndToolTurnsAreInTheKey) {
  ModelCall base;
  base.messages = {{"user", "Do the task."}};
  base.tools = {ToolSpec{"read_file", "Read a file.", Json{{"type", "object"}}},
                ToolSpec{"stop", "Stop.", Json::object()}};
  base.tool_choice = "auto";
  const std::string key = CacheKey("openai-chat@1 m", base);
  EXPECT_EQ(key, CacheKey("openai-chat@1 m", base));
  std::vector<ModelCall> variants(7, base);
  variants[0].tools.clear();                                   // no tools
  std::swap(variants[1].tools[0], variants[1].tools[1]);       // another order
  variants[2].tools[1].description = "Stop now.";              // another description
  variants[3].tools[0].parameters = Json{{"type", "string"}};  // another schema
  variants[4].tool_choice = "required";                        // another choice
  variants[5].messages.push_back(
      Message{"assistant", "", {ToolCall{"c1", "stop", "{}", ""}}, {}, {}});
  variants[6].messages.push_back(Message{"tool", "done", {}, "c1", "stop"});
  std::set<std::string> keys = {key};
  for (const auto& v : variants) keys.insert(CacheKey("openai-chat@1 m", v));
  EXPECT_EQ(keys.size(), 8u);
  ModelCall result2 = variants[6];
  result2.messages.back().content = "not done";
  EXPECT_NE(CacheKey("openai-chat@1 m", result2), CacheKey("openai-chat@1 m", variants[6]));
}

}  // namespace
}  // namespace plumb
