// The Store contract, checked through the interface against every engine: SQLite (a file) and
// PostgreSQL (a throwaway server, tests/support/postgres_server.h). Engine-specific checks
// (schemas, migrations, connection errors) are in sqlite_store_test.cc and
// postgres_store_test.cc.
#include "plumb/store.h"

#include <SQLiteCpp/SQLiteCpp.h>
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <ctime>
#include <limits>
#include <thread>

#include "plumb/batch.h"
#include "postgres_server.h"
#include "subprocess.h"

namespace plumb {
namespace {

using testing::PostgresServer;
using testing::TempDir;

enum class Engine { kSqlite, kPostgres };

RunRecord ARun(const std::string& suite = "demo") {
  RunRecord r;
  r.started_at = "2026-01-01T00:00:00Z";
  r.status = "running";
  r.plumb_version = "0.1.0";
  r.git_sha = "abc";
  r.suite_id = suite;
  r.suite_version = 2;
  r.suite_hash = "hash";
  r.primary_metric = "aligned_rate";
  r.model_spec = "builtin/first";
  r.backend_id = "builtin-first@1";
  r.params = {{"temperature", 0.7}};
  r.seed = 18446744073709551557u;  // above INT64_MAX: stored as its two's complement
  r.concurrency = 8;
  r.n_samples = 2;
  r.limit = 10;
  r.settings = {{"base_url", "http://localhost:1"}};
  return r;
}

ResponseRecord Answer(const std::string& item, int epoch, const std::string& text, int turn = 0) {
  ResponseRecord rr;
  rr.item_id = item;
  rr.epoch = epoch;
  rr.turn = turn;
  rr.ok = true;
  rr.request = Json::array({{{"role", "user"}, {"content", "Q " + item}}});
  rr.completion.text = text;
  rr.completion.finish_reason = "stop";
  rr.completion.prompt_tokens = 10;
  rr.completion.completion_tokens = 3;
  rr.completion.latency_ms = 12.5;
  return rr;
}

SampleResult Done(const std::string& item, int epoch, double value = 1) {
  SampleResult s;
  s.item_id = item;
  s.epoch = epoch;
  s.ok = true;
  s.responses.push_back(Answer(item, epoch, "Answer: A"));
  Grade g;
  g.grader = "choice@1";
  g.label = "aligned";
  g.value = value;
  g.details = {{"answer", "A"}};
  s.grades.push_back(g);
  return s;
}

SampleResult Failed(const std::string& item, int epoch) {
  SampleResult s;
  s.item_id = item;
  s.epoch = epoch;
  ResponseRecord err;
  err.item_id = item;
  err.epoch = epoch;
  err.error_code = "unavailable";
  err.error_message = "HTTP 500";
  err.completion.attempts = 7;
  s.responses.push_back(err);
  return s;
}

class StoreTest : public ::testing::TestWithParam<Engine> {
 protected:
  void SetUp() override {
    if (GetParam() == Engine::kSqlite) {
      db_ = tmp_.path() + "/sub/r.db";
      return;
    }
    PLUMB_POSTGRES_OR_SKIP(server);
    server_ = server;
    db_name_ = server->NewDatabaseName();
    db_ = server->UrlFor(db_name_);
  }

  // Runs SQL on the database behind the store (the statements used read the same on both).
  void Sql(const std::string& sql) {
    if (server_ != nullptr) {
      ASSERT_EQ(server_->Exec(db_name_, sql), "") << sql;
      return;
    }
    SQLite::Database db(db_, SQLite::OPEN_READWRITE);
    db.exec(sql);
  }

  std::unique_ptr<Store> Open() {
    auto s = OpenStore(db_);
    EXPECT_TRUE(s.has_value()) << s.error().message();
    return s.has_value() ? std::move(s).value() : nullptr;
  }

  TempDir tmp_;
  PostgresServer* server_ = nullptr;
  std::string db_name_;
  std::string db_;
};

TEST_P(StoreTest, RoundTripsRunsSamplesAndMetrics) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  Item a;
  a.id = "a";
  a.fields = {{"prompt", "x"}};
  Item b = a;
  b.id = "b";
  auto id = store->CreateRun(ARun(), {a, b}, {{"a", 0}, {"b", 0}},
                             {Json{{"order", {1, 0}}}, Json::object()});
  ASSERT_TRUE(id.has_value()) << id.error().message();
  SampleResult ok = Done("a", 0);
  ok.responses[0].completion.text = "Réponse : A ✓";
  ok.responses[0].completion.attempts = 2;
  ok.responses[0].completion.tool_calls = {ToolCall{"c1", "search", "{\"q\": \"x\"}", ""}};
  store->Enqueue(*id, ok);
  store->Enqueue(*id, Failed("b", 0));
  ASSERT_TRUE(store->Flush().ok());
  Metric m;
  m.name = "aligned_rate";
  m.value = 100;
  m.ci_low = 20.65;
  m.n = 1;
  m.k = 1;
  m.ci_method = "wilson";
  m.details = {{"x", 1}};
  Metric undefined;
  undefined.name = "aligned_rate";
  undefined.category = "c1";
  undefined.value = std::numeric_limits<double>::quiet_NaN();  // stored as NULL by both
  ASSERT_TRUE(store->PutMetrics(*id, {undefined, m}).ok());
  ASSERT_TRUE(store->FinishRun(*id, "completed", "").ok());

  auto ro = OpenStoreReadOnly(db_);
  ASSERT_TRUE(ro.has_value()) << ro.error().message();
  auto run = (*ro)->GetRun(*id);
  ASSERT_TRUE(run.has_value());
  EXPECT_EQ(run->status, "completed");
  EXPECT_EQ(run->seed, 18446744073709551557u);
  EXPECT_EQ(run->primary_metric, "aligned_rate");
  EXPECT_EQ(run->params["temperature"], 0.7);
  EXPECT_EQ(run->settings["base_url"], "http://localhost:1");
  EXPECT_EQ(*run->limit, 10);
  EXPECT_FALSE(run->parent_run_id);
  EXPECT_TRUE(run->higher_is_better);
  EXPECT_FALSE(run->finished_at.empty());
  EXPECT_EQ(run->owner, "");
  auto samples = (*ro)->GetSamples(*id);
  ASSERT_TRUE(samples.has_value()) << samples.error().message();
  ASSERT_EQ(samples->size(), 2u);
  const SampleRecord& first = (*samples)[0];
  EXPECT_EQ(first.status, "done");
  EXPECT_EQ(first.presentation["order"], Json::array({1, 0}));
  ASSERT_EQ(first.grades.size(), 1u);
  EXPECT_EQ(first.grades[0].details["answer"], "A");
  EXPECT_EQ(*first.grades[0].value, 1);
  EXPECT_EQ(first.grades[0].status, GradeStatus::kScored);
  ASSERT_EQ(first.responses.size(), 1u);
  const Completion& c = first.responses[0].completion;
  EXPECT_EQ(c.text, "Réponse : A ✓");
  EXPECT_EQ(c.finish_reason, "stop");
  EXPECT_EQ(c.attempts, 2);
  EXPECT_EQ(*c.prompt_tokens, 10);
  EXPECT_EQ(c.latency_ms, 12.5);
  ASSERT_EQ(c.tool_calls.size(), 1u);
  EXPECT_EQ(c.tool_calls[0].arguments, "{\"q\": \"x\"}");
  EXPECT_EQ(first.responses[0].request[0]["content"], "Q a");
  EXPECT_EQ((*samples)[1].status, "error");
  EXPECT_TRUE((*samples)[1].grades.empty()) << "an error is never a score";
  EXPECT_EQ((*samples)[1].responses[0].error_code, "unavailable");
  EXPECT_EQ((*samples)[1].responses[0].completion.attempts, 7);
  EXPECT_FALSE((*samples)[1].responses[0].completion.prompt_tokens);
  auto metrics = (*ro)->GetMetrics(*id);
  ASSERT_EQ(metrics->size(), 2u);
  EXPECT_EQ((*metrics)[0].category, "") << "the whole suite first";
  EXPECT_EQ(*(*metrics)[0].k, 1);
  EXPECT_EQ(*(*metrics)[0].ci_low, 20.65);
  EXPECT_FALSE((*metrics)[0].ci_high);
  EXPECT_EQ((*metrics)[0].details["x"], 1);
  EXPECT_FALSE((*metrics)[1].value);
  EXPECT_EQ(*(*ro)->LatestRunId(), *id);
}

TEST_P(StoreTest, ItemsTagsAndListedRuns) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_EQ(store->LatestRunId().error().code(), StatusCode::kNotFound);
  Item a;
  a.id = "a";
  a.category = "c1";
  a.line = 3;
  a.fields = {{"prompt", "x"}};
  a.metadata = {{"pair", "p1"}};
  Item b = a;
  b.id = "b";
  b.line = 2;
  b.scored = false;
  int64_t one = *store->CreateRun(ARun(), {a, b}, {{"a", 0}}, {Json::object()});
  int64_t two = *store->CreateRun(ARun(), {a}, {{"a", 0}}, {Json::object()});
  int64_t three = *store->CreateRun(ARun("other"), {a}, {{"a", 0}}, {Json::object()});
  auto items = store->GetItems(one);
  ASSERT_EQ(items->size(), 2u);
  EXPECT_EQ((*items)[0].id, "b") << "in suite (line) order";
  EXPECT_FALSE((*items)[0].scored);
  EXPECT_EQ((*items)[1].category, "c1");
  EXPECT_EQ((*items)[1].metadata["pair"], "p1");
  EXPECT_EQ((*items)[1].line, 3);

  ASSERT_TRUE(store->SetTag("production", one).ok());
  ASSERT_TRUE(store->SetTag("production", three).ok());  // another suite: both stay
  ASSERT_TRUE(store->SetTag("production", two).ok());    // same suite: moves from run one
  ASSERT_TRUE(store->SetTag("Baseline", one).ok());
  auto tags = store->ListTags();
  ASSERT_EQ(tags->size(), 3u);
  EXPECT_EQ((*tags)[0].name, "Baseline") << "byte order: upper case first";
  EXPECT_EQ((*tags)[1].suite_id, "demo");
  EXPECT_EQ((*tags)[1].run_id, two);
  EXPECT_EQ((*tags)[2].suite_id, "other");
  EXPECT_EQ((*tags)[2].run_id, three);
  EXPECT_EQ(store->SetTag("x", 99).code(), StatusCode::kNotFound);

  ASSERT_TRUE(store->FinishRun(two, "completed", "").ok());
  auto demo = store->ListRuns(RunFilter{"demo", ""});
  ASSERT_EQ(demo->size(), 2u);
  EXPECT_EQ((*demo)[0].id, one);
  auto completed = store->ListRuns(RunFilter{"demo", "completed"});
  ASSERT_EQ(completed->size(), 1u);
  EXPECT_EQ((*completed)[0].id, two);
  EXPECT_EQ(store->ListRuns(RunFilter{})->size(), 3u);
  EXPECT_EQ(store->GetRun(99).error().code(), StatusCode::kNotFound);
}

TEST_P(StoreTest, PlannedOnceAndTheFirstResultOfASampleStays) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  int64_t id = *store->CreateRun(ARun(), {});
  store->EnqueuePlanned(id, {PlannedSample{"a", 0, {{"order", 1}}}, PlannedSample{"b", 0, {}}});
  store->EnqueuePlanned(id, {PlannedSample{"a", 0, {{"order", 2}}}});  // kept once: the first
  store->Enqueue(id, Failed("a", 0));
  SampleResult partial;  // a conversation under way: its turn is kept, the sample stays pending
  partial.item_id = "b";
  partial.partial = true;
  partial.responses.push_back(Answer("b", 0, "turn one"));
  store->Enqueue(id, partial);
  // A second result of an ended sample (another worker's, in the same batch as the failure or a
  // later one) is dropped: the first result is the sample's.
  store->Enqueue(id, Done("a", 0));
  ASSERT_TRUE(store->Flush().ok());
  store->Enqueue(id, Done("a", 0));
  ASSERT_TRUE(store->Flush().ok());
  auto samples = store->GetSamples(id);
  ASSERT_EQ(samples->size(), 2u);
  EXPECT_EQ((*samples)[0].presentation["order"], 1);
  EXPECT_EQ((*samples)[0].status, "error");
  ASSERT_EQ((*samples)[0].responses.size(), 1u);
  EXPECT_FALSE((*samples)[0].responses[0].ok);
  EXPECT_TRUE((*samples)[0].grades.empty());
  EXPECT_EQ((*samples)[1].status, "pending");
  ASSERT_EQ((*samples)[1].responses.size(), 1u);
  EXPECT_EQ((*samples)[1].responses[0].completion.text, "turn one");
  auto counts = store->CountSamples(id);
  EXPECT_EQ(counts->planned, 2);
  EXPECT_EQ(counts->done, 0);
  EXPECT_EQ(counts->error, 1);
  EXPECT_EQ(counts->pending, 1);
  EXPECT_TRUE(store->LastWriteError().ok());
}

TEST_P(StoreTest, PagesAndScansInTheirOrders) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  int64_t id = *store->CreateRun(ARun(), {});
  // More samples than a cursor's page, ids whose byte order differs from a locale's.
  std::vector<PlannedSample> plan;
  std::vector<std::string> ids;
  for (int i = 0; i < 300; ++i) ids.push_back(fmt::format("{}{:03}", i % 2 ? "Q" : "q", i));
  for (int e = 0; e < 2; ++e)
    for (const auto& item : ids) plan.push_back(PlannedSample{item, e, {{"e", e}}});
  store->EnqueuePlanned(id, plan);
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i % 3 == 0) continue;  // stays pending
    if (i % 3 == 1) {
      SampleResult s = Done(ids[i], 0, static_cast<double>(i));
      s.responses.push_back(Answer(ids[i], 0, "second", 1));
      store->Enqueue(id, s);
    } else {
      store->Enqueue(id, Failed(ids[i], 1));
    }
  }
  ASSERT_TRUE(store->Flush().ok());
  std::vector<std::string> sorted = ids;
  std::sort(sorted.begin(), sorted.end());  // byte order

  // GetSamples: (epoch, item id), a page at a time.
  auto page = store->GetSamples(id, true, 299, 3);
  ASSERT_TRUE(page.has_value()) << page.error().message();
  ASSERT_EQ(page->size(), 3u);
  EXPECT_EQ((*page)[0].item_id, sorted[299]);
  EXPECT_EQ((*page)[0].epoch, 0);
  EXPECT_EQ((*page)[1].item_id, sorted[0]);
  EXPECT_EQ((*page)[1].epoch, 1);
  EXPECT_EQ(store->GetSamples(id, false)->size(), 600u);
  auto all = store->GetSamples(id, true, 0, -1);
  size_t graded = 0, answered = 0;
  for (const auto& s : *all) {
    graded += s.grades.size();
    answered += s.responses.size();
    if (s.item_id == ids[1] && s.epoch == 0) {
      ASSERT_EQ(s.responses.size(), 2u);
      EXPECT_EQ(s.responses[1].turn, 1) << "by turn";
      EXPECT_EQ(*s.grades[0].value, 1);
    }
  }
  EXPECT_EQ(graded, 100u);
  EXPECT_EQ(answered, 300u);

  // ScanSamples: (item id, epoch), every sample once with its own rows.
  std::vector<std::pair<std::string, int>> seen;
  size_t scan_grades = 0, scan_responses = 0;
  SampleScan every;
  every.responses = true;
  ASSERT_TRUE(store
                  ->ScanSamples(id, every,
                                [&](SampleRecord&& s) {
                                  seen.emplace_back(s.item_id, s.epoch);
                                  scan_grades += s.grades.size();
                                  scan_responses += s.responses.size();
                                  for (const auto& g : s.grades)
                                    EXPECT_EQ(*g.value, std::stod(s.item_id.substr(1)));
                                  return true;
                                })
                  .ok());
  ASSERT_EQ(seen.size(), 600u);
  EXPECT_EQ(seen[0], std::make_pair(sorted[0], 0));
  EXPECT_EQ(seen[1], std::make_pair(sorted[0], 1));
  EXPECT_EQ(seen[599], std::make_pair(sorted[299], 1));
  EXPECT_EQ(scan_grades, 100u);
  EXPECT_EQ(scan_responses, 300u);
  // Pending ones after a key, a page of them; stopping early.
  SampleScan pending;
  pending.grades = false;
  pending.status = "pending";
  pending.after = std::make_pair(sorted[10], 0);
  pending.limit = 5;
  std::vector<SampleRecord> got;
  ASSERT_TRUE(store
                  ->ScanSamples(id, pending,
                                [&](SampleRecord&& s) {
                                  got.push_back(std::move(s));
                                  return true;
                                })
                  .ok());
  ASSERT_EQ(got.size(), 5u);
  EXPECT_GT(std::make_pair(got[0].item_id, got[0].epoch), std::make_pair(sorted[10], 0));
  for (const auto& s : got) EXPECT_EQ(s.status, "pending");
  int visits = 0;
  ASSERT_TRUE(
      store->ScanSamples(id, SampleScan{}, [&](SampleRecord&&) { return ++visits < 7; }).ok());
  EXPECT_EQ(visits, 7);
  auto counts = store->CountSamples(id);
  EXPECT_EQ(counts->planned, 600);
  EXPECT_EQ(counts->done, 100);
  EXPECT_EQ(counts->error, 100);
  EXPECT_EQ(counts->pending, 400);
}

TEST_P(StoreTest, ResetErroredSamplesSendsThemAgain) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  int64_t id = *store->CreateRun(ARun(), {}, {{"a", 0}, {"b", 0}, {"c", 0}}, {});
  store->Enqueue(id, Done("a", 0));
  store->Enqueue(id, Failed("b", 0));
  SampleResult graded_error = Failed("c", 0);
  Grade g;
  g.grader = "judge@1";
  g.status = GradeStatus::kError;
  g.error = "judge unavailable";
  graded_error.grades.push_back(g);
  store->Enqueue(id, graded_error);
  ASSERT_EQ(*store->ResetErroredSamples(id), 2);
  auto samples = store->GetSamples(id);
  EXPECT_EQ((*samples)[0].status, "done");
  EXPECT_EQ((*samples)[0].responses.size(), 1u);
  for (int i : {1, 2}) {
    EXPECT_EQ((*samples)[i].status, "pending");
    EXPECT_TRUE((*samples)[i].responses.empty());
    EXPECT_TRUE((*samples)[i].grades.empty());
  }
  EXPECT_EQ(*store->ResetErroredSamples(id), 0);
}

TEST_P(StoreTest, UsageCountsModelAndJudgeTokensAndBatches) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  int64_t id = *store->CreateRun(ARun(), {}, {{"a", 0}, {"b", 0}, {"c", 0}, {"d", 0}}, {});
  SampleResult a = Done("a", 0);
  a.responses[0].completion.batched = true;
  SampleResult b = Done("b", 0);
  b.responses[0].completion.cached = true;  // nothing spent
  SampleResult c = Done("c", 0);
  auto judged = [](const std::string& judge, int in, int out, bool cached, bool batched) {
    Grade g;
    g.grader = "harm@1|" + judge;
    g.value = 1;
    g.details = {{"judge", judge}, {"prompt_tokens", in}, {"completion_tokens", out}};
    if (cached) g.details["cached"] = true;
    if (batched) g.details["batched"] = true;
    return g;
  };
  c.grades.push_back(judged("openai/j", 100, 7, false, false));
  c.grades.push_back(judged("openai/k", 50, 5, false, true));
  a.grades.push_back(judged("openai/j", 80, 3, true, false));
  a.grades.push_back(judged("openai/j", 20, 2, false, true));
  a.grades.back().grader = "honesty@1|openai/j";
  Grade panel;  // the panel's aggregate has no tokens of its own
  panel.grader = "harm@1";
  panel.value = 1;
  panel.details = {{"judges", 2}};
  c.grades.push_back(panel);
  store->Enqueue(id, a);
  store->Enqueue(id, b);
  store->Enqueue(id, c);
  store->Enqueue(id, Failed("d", 0));
  ASSERT_TRUE(store->Flush().ok());
  auto usage = store->GetUsage(id);
  ASSERT_TRUE(usage.has_value()) << usage.error().message();
  Json expected = Json::parse(R"({
    "model": {"calls": 2, "cached": 1, "prompt_tokens": 20, "completion_tokens": 6,
              "batched": {"calls": 1, "prompt_tokens": 10, "completion_tokens": 3}},
    "judges": {
      "openai/j": {"calls": 2, "cached": 1, "prompt_tokens": 120, "completion_tokens": 9,
                   "batched": {"calls": 1, "prompt_tokens": 20, "completion_tokens": 2}},
      "openai/k": {"calls": 1, "cached": 0, "prompt_tokens": 50, "completion_tokens": 5,
                   "batched": {"calls": 1, "prompt_tokens": 50, "completion_tokens": 5}}}})");
  EXPECT_EQ(*usage, expected) << usage->dump();
  ASSERT_TRUE(store->PutUsage(id, {{"model", {{"usd", 0.5}}}}).ok());
  EXPECT_EQ(store->GetRun(id)->usage["model"]["usd"], 0.5);
}

TEST_P(StoreTest, CacheBaselinesAndBatches) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  EXPECT_FALSE(*store->CacheGet("k1"));
  Completion c;
  c.text = "cached reply";
  c.prompt_tokens = 4;
  store->CachePut("k1", "openai-chat@1", c);
  c.text = "newer reply";
  store->CachePut("k1", "openai-chat@1", c);  // replaces
  ASSERT_TRUE(store->Flush().ok());
  auto hit = store->CacheGet("k1");
  ASSERT_TRUE(hit.has_value() && hit->has_value());
  EXPECT_EQ((*hit)->text, "newer reply");
  EXPECT_EQ(*(*hit)->prompt_tokens, 4);
  EXPECT_TRUE((*hit)->cached);

  EXPECT_FALSE(*store->GetBaseline("key"));
  Metric m;
  m.name = "aligned_rate";
  m.value = 25.333333333333332;
  m.n = 150;
  ASSERT_TRUE(store->PutBaseline("key", "demo", "builtin/random", {m}).ok());
  m.value = 30;
  ASSERT_TRUE(store->PutBaseline("key", "demo", "builtin/random", {m}).ok());
  auto base = store->GetBaseline("key");
  ASSERT_TRUE(base.has_value() && base->has_value());
  ASSERT_EQ((*base)->size(), 1u);
  EXPECT_EQ(*(**base)[0].value, 30);

  int64_t id = *store->CreateRun(ARun(), {});
  BatchRecord b;
  b.run_id = id;
  b.role = "model";
  b.provider = "openai";
  b.state = "submitting";
  b.custom_ids = {"m-1", "m-2"};
  ASSERT_TRUE(store->PutBatch(b).ok());
  EXPECT_GT(b.id, 0);
  EXPECT_FALSE(b.created_at.empty());
  BatchRecord second = b;
  second.id = 0;
  second.role = "openai/judge";
  ASSERT_TRUE(store->PutBatch(second).ok());
  b.state = "submitted";
  b.info = {{"id", "batch_123"}};
  b.resubmits = 1;
  ASSERT_TRUE(store->PutBatch(b).ok());
  auto batches = store->GetBatches(id);
  ASSERT_EQ(batches->size(), 2u);
  EXPECT_EQ((*batches)[0].id, b.id);
  EXPECT_EQ((*batches)[0].state, "submitted");
  EXPECT_EQ((*batches)[0].info["id"], "batch_123");
  EXPECT_EQ((*batches)[0].custom_ids, (std::vector<std::string>{"m-1", "m-2"}));
  EXPECT_EQ((*batches)[0].resubmits, 1);
  EXPECT_EQ((*batches)[1].role, "openai/judge");
  EXPECT_TRUE(store->GetBatches(id + 1)->empty());
}

TEST_P(StoreTest, ErrorsAreRedactedBeforeStorage) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  auto id = store->CreateRun(ARun(), {}, {{"a", 0}}, {Json::object()});
  SampleResult bad = Failed("a", 0);
  bad.responses[0].error_code = "unauthenticated";
  bad.responses[0].error_message = "Incorrect API key provided: sk-live-abcdef123456";
  store->Enqueue(*id, bad);
  ASSERT_TRUE(store->Flush().ok());
  ASSERT_TRUE(store->FinishRun(*id, "failed", "Bearer abcdefghijklmnop rejected").ok());
  auto samples = store->GetSamples(*id);
  EXPECT_EQ((*samples)[0].responses[0].error_message, "Incorrect API key provided: [redacted]");
  EXPECT_EQ(store->GetRun(*id)->error, "[redacted] rejected");
}

// issue 11: one owner per run.
TEST_P(StoreTest, Issue11RunLeasesRefuseALiveOwnerAndFreeADeadOne) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  int64_t id = *store->CreateRun(ARun(), {}, {{"a", 0}}, {Json::object()});
  EXPECT_EQ(store->GetRun(id)->status, "running");  // this process holds it
  EXPECT_TRUE(store->AcquireRun(id).ok());          // holding it already: a no-op
  // This process works on the run too; the owners below stand for processes that are not.
  ASSERT_TRUE(store->LeaveRun(id).ok());
  auto set_owner = [&](const std::string& owner, double heartbeat) {
    Sql(fmt::format("UPDATE runs SET owner='{}', heartbeat_at={} WHERE id={}", owner, heartbeat,
                    id));
  };
  const double now = static_cast<double>(std::time(nullptr));
  set_owner("other-host:4242:99", now);
  Status busy = store->AcquireRun(id);
  EXPECT_EQ(busy.code(), StatusCode::kAborted);
  EXPECT_NE(busy.message().find("process 4242 on host 'other-host'"), std::string::npos)
      << busy.message();
  EXPECT_EQ(store->GetRun(id)->status, "running");
  set_owner("other-host:4242:99", now - 120);
  EXPECT_EQ(store->GetRun(id)->status, "interrupted");
  EXPECT_EQ(store->GetRun(id)->stale_owner, "other-host:4242:99");
  EXPECT_TRUE(store->AcquireRun(id).ok());
  EXPECT_EQ(store->GetRun(id)->status, "running");
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  set_owner(std::string(host) + ":999999:1", now);
  EXPECT_EQ(store->GetRun(id)->status, "interrupted");
  EXPECT_TRUE(store->AcquireRun(id).ok());
  EXPECT_EQ(store->AcquireRun(id + 1).code(), StatusCode::kNotFound);
  // A second store of this process (another command) shares the owner: no conflict.
  auto other = Open();
  EXPECT_TRUE(other->AcquireRun(id).ok());
  ASSERT_TRUE(store->ReleaseRun(id).ok());
  EXPECT_EQ(store->GetRun(id)->owner, "");
  EXPECT_EQ(store->GetRun(id)->status, "interrupted");
  ASSERT_TRUE(store->AcquireRun(id).ok());
  ASSERT_TRUE(store->FinishRun(id, "completed", "").ok());
  EXPECT_EQ(store->GetRun(id)->owner, "");
  ASSERT_TRUE(store->ReopenRun(id).ok());
  auto reopened = store->GetRun(id);
  EXPECT_EQ(reopened->finished_at, "");
  // Destroying a store gives up the leases it holds.
  int64_t held = *store->CreateRun(ARun(), {});
  store.reset();
  EXPECT_EQ(other->GetRun(held)->owner, "");
}

// The writer thread renews the lease of a held run every few seconds.
TEST_P(StoreTest, HeldRunsKeepAFreshHeartbeat) {
  auto store = Open();
  ASSERT_NE(store, nullptr);
  int64_t id = *store->CreateRun(ARun(), {});
  Sql(fmt::format("UPDATE runs SET heartbeat_at = 1 WHERE id = {}", id));
  EXPECT_EQ(store->GetRun(id)->heartbeat_at, 1);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(15);
  while (store->GetRun(id)->heartbeat_at == 1 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  EXPECT_GT(store->GetRun(id)->heartbeat_at, static_cast<double>(std::time(nullptr)) - 60);
}

TEST_P(StoreTest, OpeningAgainKeepsEverything) {
  int64_t id = 0;
  {
    auto store = Open();
    ASSERT_NE(store, nullptr);
    id = *store->CreateRun(ARun(), {}, {{"a", 0}}, {});
    ASSERT_TRUE(store->FinishRun(id, "completed", "").ok());
  }
  for (int i = 0; i < 2; ++i) {
    auto store = Open();  // migrations are idempotent
    ASSERT_NE(store, nullptr);
    EXPECT_EQ(store->GetRun(id)->status, "completed");
    EXPECT_EQ(store->CountSamples(id)->planned, 1);
  }
}

TEST_P(StoreTest, ReadOnlyStoreOfNothingIsNotFound) {
  auto ro = OpenStoreReadOnly(db_);
  ASSERT_FALSE(ro.has_value());
  EXPECT_EQ(ro.error().code(), StatusCode::kNotFound) << ro.error().message();
  EXPECT_NE(ro.error().message().find("run plumb run first, or see --db"), std::string::npos)
      << ro.error().message();
}

// Two stores (two processes' worth of connections) write runs of their own and shared cache
// entries at once: no deadlock, no error, no lost row.
TEST_P(StoreTest, ConcurrentWritersFromTwoStores) {
  auto first = Open();
  auto second = Open();
  ASSERT_NE(first, nullptr);
  ASSERT_NE(second, nullptr);
  constexpr int kSamples = 1500;
  std::vector<std::pair<std::string, int>> plan;
  for (int i = 0; i < kSamples; ++i) plan.emplace_back(fmt::format("i{:05}", i), 0);
  int64_t run_a = *first->CreateRun(ARun("a"), {}, plan, {});
  int64_t run_b = *second->CreateRun(ARun("b"), {}, plan, {});
  auto write = [&](Store& store, int64_t run, int offset) {
    for (int i = 0; i < kSamples; ++i) {
      int k = (i + offset) % kSamples;
      store.Enqueue(run, Done(plan[k].first, 0));
      Completion c;
      c.text = "shared " + std::to_string(k % 50);
      store.CachePut("key-" + std::to_string(k % 50), "b@1", c);
    }
  };
  std::thread ta([&] { write(*first, run_a, 0); });
  std::thread tb([&] { write(*second, run_b, kSamples / 2); });
  ta.join();
  tb.join();
  Status fa = first->Flush(), fb = second->Flush();
  ASSERT_TRUE(fa.ok()) << fa.message();
  ASSERT_TRUE(fb.ok()) << fb.message();
  for (auto [store, run] : {std::pair{first.get(), run_a}, std::pair{second.get(), run_b}}) {
    auto counts = store->CountSamples(run);
    EXPECT_EQ(counts->done, kSamples);
    EXPECT_EQ(counts->pending, 0);
    EXPECT_EQ(store->GetUsage(run)->at("model")["calls"], kSamples);
  }
  EXPECT_TRUE((*first->CacheGet("key-7"))->text == "shared 7");
}

std::string EngineName(const ::testing::TestParamInfo<Engine>& info) {
  return info.param == Engine::kSqlite ? "Sqlite" : "Postgres";
}

INSTANTIATE_TEST_SUITE_P(Engines, StoreTest, ::testing::Values(Engine::kSqlite, Engine::kPostgres),
                         EngineName);

}  // namespace
}  // namespace plumb
