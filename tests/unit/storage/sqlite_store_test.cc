// The SQLite store: round trips, batching writer, schema versions.
#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <ctime>

#include "plumb/store.h"
#include "subprocess.h"

namespace plumb {
namespace {

using testing::TempDir;

RunRecord ARun() {
  RunRecord r;
  r.started_at = "2026-01-01T00:00:00Z";
  r.status = "running";
  r.plumb_version = "0.1.0";
  r.git_sha = "abc";
  r.suite_id = "demo";
  r.suite_version = 2;
  r.suite_hash = "hash";
  r.primary_metric = "aligned_rate";
  r.model_spec = "builtin/first";
  r.backend_id = "builtin-first@1";
  r.params = {{"temperature", 0}};
  r.seed = 42;
  r.concurrency = 8;
  r.n_samples = 2;
  return r;
}

TEST(SqliteStore, RoundTripsRunsSamplesAndMetrics) {
  TempDir tmp;
  auto store = OpenSqliteStore(tmp.path() + "/sub/r.db");
  ASSERT_TRUE(store.has_value()) << store.error().message();
  Item a;
  a.id = "a";
  a.fields = {{"prompt", "x"}};
  Item b = a;
  b.id = "b";
  auto id = (*store)->CreateRun(ARun(), {a, b}, {{"a", 0}, {"b", 0}},
                                {Json{{"order", {1, 0}}}, Json::object()});
  ASSERT_TRUE(id.has_value()) << id.error().message();

  SampleResult ok;
  ok.item_id = "a";
  ok.ok = true;
  ResponseRecord rr;
  rr.item_id = "a";
  rr.ok = true;
  rr.request = Json::array({{{"role", "user"}, {"content", "x"}}});
  rr.completion.text = "Answer: A";
  rr.completion.prompt_tokens = 5;
  rr.completion.attempts = 2;
  ok.responses.push_back(rr);
  Grade g;
  g.grader = "choice@1";
  g.label = "aligned";
  g.value = 1;
  g.details = {{"answer", "A"}};
  ok.grades.push_back(g);
  (*store)->Enqueue(*id, ok);
  SampleResult bad;
  bad.item_id = "b";
  ResponseRecord err;
  err.item_id = "b";
  err.error_code = "unavailable";
  err.error_message = "HTTP 500";
  err.completion.attempts = 7;
  bad.responses.push_back(err);
  (*store)->Enqueue(*id, bad);
  ASSERT_TRUE((*store)->Flush().ok());
  Metric m;
  m.name = "aligned_rate";
  m.value = 100;
  m.n = 1;
  m.k = 1;
  m.ci_method = "wilson";
  ASSERT_TRUE((*store)->PutMetrics(*id, {m}).ok());
  ASSERT_TRUE((*store)->FinishRun(*id, "completed", "").ok());

  auto ro = OpenSqliteStoreReadOnly(tmp.path() + "/sub/r.db");
  ASSERT_TRUE(ro.has_value());
  auto run = (*ro)->GetRun(*id);
  ASSERT_TRUE(run.has_value());
  EXPECT_EQ(run->status, "completed");
  EXPECT_EQ(run->seed, 42u);
  EXPECT_EQ(run->primary_metric, "aligned_rate");
  EXPECT_FALSE(run->finished_at.empty());
  auto samples = (*ro)->GetSamples(*id);
  ASSERT_EQ(samples->size(), 2u);
  EXPECT_EQ((*samples)[0].status, "done");
  EXPECT_EQ((*samples)[0].presentation["order"], Json::array({1, 0}));
  EXPECT_EQ((*samples)[0].grades[0].details["answer"], "A");
  EXPECT_EQ((*samples)[0].responses[0].completion.attempts, 2);
  EXPECT_EQ(*(*samples)[0].responses[0].completion.prompt_tokens, 5);
  EXPECT_EQ((*samples)[1].status, "error");
  EXPECT_TRUE((*samples)[1].grades.empty()) << "an error is never a score";
  EXPECT_EQ((*samples)[1].responses[0].error_code, "unavailable");
  EXPECT_EQ((*samples)[1].responses[0].completion.attempts, 7);
  auto metrics = (*ro)->GetMetrics(*id);
  ASSERT_EQ(metrics->size(), 1u);
  EXPECT_EQ(*(*metrics)[0].k, 1);
  EXPECT_EQ(*(*ro)->LatestRunId(), *id);
}

TEST(SqliteStore, ItemsAndTagsRoundTrip) {
  TempDir tmp;
  auto store = std::move(OpenSqliteStore(tmp.path() + "/r.db")).value();
  Item a;
  a.id = "a";
  a.category = "c1";
  a.line = 2;
  a.fields = {{"prompt", "x"}};
  a.metadata = {{"pair", "p1"}};
  Item b = a;
  b.id = "b";
  b.line = 3;
  b.scored = false;
  int64_t one = *store->CreateRun(ARun(), {a, b}, {{"a", 0}}, {Json::object()});
  RunRecord other = ARun();
  other.suite_id = "other";
  int64_t two = *store->CreateRun(ARun(), {a}, {{"a", 0}}, {Json::object()});
  int64_t three = *store->CreateRun(other, {a}, {{"a", 0}}, {Json::object()});
  auto items = store->GetItems(one);
  ASSERT_EQ(items->size(), 2u);
  EXPECT_EQ((*items)[0].id, "a");
  EXPECT_EQ((*items)[0].category, "c1");
  EXPECT_EQ((*items)[0].metadata["pair"], "p1");
  EXPECT_FALSE((*items)[1].scored);

  ASSERT_TRUE(store->SetTag("production", one).ok());
  ASSERT_TRUE(store->SetTag("production", three).ok());  // another suite: both stay
  ASSERT_TRUE(store->SetTag("production", two).ok());    // same suite: moves from run one
  auto tags = store->ListTags();
  ASSERT_EQ(tags->size(), 2u);
  EXPECT_EQ((*tags)[0].suite_id, "demo");
  EXPECT_EQ((*tags)[0].run_id, two);
  EXPECT_EQ((*tags)[1].suite_id, "other");
  EXPECT_EQ((*tags)[1].run_id, three);
  EXPECT_EQ(store->SetTag("x", 99).code(), StatusCode::kNotFound);
}

TEST(SqliteStore, MigratesVersionOneDatabases) {
  TempDir tmp;
  std::string path = tmp.path() + "/old.db";
  int64_t id = 0;
  {
    auto store = std::move(OpenSqliteStore(path)).value();
    id = *store->CreateRun(ARun(), {}, {}, {});
  }
  {
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    db.exec(
        "DROP TABLE tags; DROP TABLE baselines; ALTER TABLE runs DROP COLUMN owner; "
        "ALTER TABLE runs DROP COLUMN heartbeat_at; ALTER TABLE responses DROP COLUMN "
        "tool_calls; ALTER TABLE responses DROP COLUMN batched; ALTER TABLE responses DROP COLUMN endpoint; "
        "DROP TABLE batches; DROP INDEX runs_uuid; ALTER TABLE runs DROP COLUMN uuid; "
        "DROP TABLE workers; DROP INDEX samples_pending; ALTER TABLE samples DROP COLUMN "
        "worker; ALTER TABLE runs DROP COLUMN finisher; PRAGMA user_version = 1");
  }
  auto store = std::move(OpenSqliteStore(path)).value();
  EXPECT_EQ(store->GetRun(id)->suite_id, "demo");
  ASSERT_TRUE(store->SetTag("production", id).ok());
  SQLite::Database db(path, SQLite::OPEN_READONLY);
  EXPECT_EQ(db.execAndGet("PRAGMA user_version").getInt(), kSchemaVersion);
}

TEST(SqliteStore, RefusesNewerSchemaAndForeignDatabases) {
  TempDir tmp;
  std::string newer = tmp.path() + "/newer.db";
  {
    SQLite::Database db(newer, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("PRAGMA user_version = 99");
  }
  auto s = OpenSqliteStore(newer);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.error().message(), "results database '" + newer +
                                     "' has schema version 99, newer than this plumb supports "
                                     "(" +
                                     std::to_string(kSchemaVersion) +
                                     "); upgrade plumb or use another --db");
  std::string foreign = tmp.path() + "/foreign.db";
  {
    SQLite::Database db(foreign, SQLite::OPEN_READWRITE | SQLite::OPEN_CREATE);
    db.exec("CREATE TABLE t (x)");
  }
  EXPECT_EQ(OpenSqliteStore(foreign).error().code(), StatusCode::kFailedPrecondition);
  EXPECT_EQ(OpenSqliteStoreReadOnly(tmp.path() + "/missing.db").error().code(),
            StatusCode::kNotFound);
}

TEST(SqliteStore, ErrorsAreRedactedBeforeStorage) {
  TempDir tmp;
  auto store = OpenSqliteStore(tmp.path() + "/r.db");
  auto id = (*store)->CreateRun(ARun(), {}, {{"a", 0}}, {Json::object()});
  SampleResult bad;
  bad.item_id = "a";
  ResponseRecord err;
  err.item_id = "a";
  err.error_code = "unauthenticated";
  err.error_message = "Incorrect API key provided: sk-live-abcdef123456";
  bad.responses.push_back(err);
  (*store)->Enqueue(*id, bad);
  ASSERT_TRUE((*store)->Flush().ok());
  auto samples = (*store)->GetSamples(*id);
  EXPECT_EQ((*samples)[0].responses[0].error_message, "Incorrect API key provided: [redacted]");
}

// issue 11: one owner per run.
TEST(SqliteStore, Issue11RunLeasesRefuseALiveOwnerAndFreeADeadOne) {
  TempDir tmp;
  std::string path = tmp.path() + "/r.db";
  auto store = std::move(OpenSqliteStore(path)).value();
  int64_t id = *store->CreateRun(ARun(), {}, {{"a", 0}}, {Json::object()});
  EXPECT_EQ(store->GetRun(id)->status, "running");  // this process holds it
  EXPECT_TRUE(store->AcquireRun(id).ok());          // holding it already: a no-op
  ASSERT_TRUE(store->LeaveRun(id).ok());  // the owners below stand for other processes
  auto set_owner = [&](const std::string& owner, double heartbeat) {
    SQLite::Database db(path, SQLite::OPEN_READWRITE);
    SQLite::Statement q(db, "UPDATE runs SET owner=?, heartbeat_at=? WHERE id=?");
    q.bind(1, owner);
    q.bind(2, heartbeat);
    q.bind(3, id);
    q.exec();
  };
  const double now = static_cast<double>(std::time(nullptr));
  // Another machine with a fresh heartbeat: refused, naming it.
  set_owner("other-host:4242:99", now);
  Status busy = store->AcquireRun(id);
  EXPECT_EQ(busy.code(), StatusCode::kAborted);
  EXPECT_NE(busy.message().find("process 4242 on host 'other-host'"), std::string::npos)
      << busy.message();
  EXPECT_EQ(store->GetRun(id)->status, "running");
  // Its heartbeat has stopped: the run reads back interrupted and can be taken.
  set_owner("other-host:4242:99", now - 120);
  EXPECT_EQ(store->GetRun(id)->status, "interrupted");
  EXPECT_TRUE(store->AcquireRun(id).ok());
  EXPECT_EQ(store->GetRun(id)->status, "running");
  // A process of this host that no longer exists is dead at once, heartbeat or not.
  char host[256] = {0};
  gethostname(host, sizeof host - 1);
  set_owner(std::string(host) + ":999999:1", now);
  EXPECT_EQ(store->GetRun(id)->status, "interrupted");
  EXPECT_TRUE(store->AcquireRun(id).ok());
  ASSERT_TRUE(store->FinishRun(id, "completed", "").ok());
  EXPECT_EQ(store->GetRun(id)->owner, "");
}

}  // namespace
}  // namespace plumb
