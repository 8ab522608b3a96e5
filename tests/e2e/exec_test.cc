// exec/<command>: a subprocess model over JSON lines; several processes, crashes restarted and
// their requests sent again, per-item errors recorded, a process that cannot stay up fails the
// run.
#include <gtest/gtest.h>

#include <set>

#include "e2e.h"
#include "plumb/store.h"

namespace plumb::testing {
namespace {

std::string Model(const std::string& flags) {
  return std::string("exec/") + EXEC_MODEL + " " + flags;
}

TEST(Exec, AnswersThroughSeveralProcesses) {
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "ex", 12);
  auto r = Plumb(tmp.path(), {"run", "--suite", manifest, "--model", Model("--sleep-ms 20"),
                              "--backend-option", "processes=3", "--progress", "none", "-v"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("exec[1]: exec_model ready"), std::string::npos) << "stderr goes to the log";
  auto store = OpenSqliteStoreReadOnly(tmp.path() + "/results/plumb.db");
  std::set<std::string> pids;
  auto samples = (*store)->GetSamples(1);
  for (const auto& s : *samples) {
    ASSERT_EQ(s.status, "done");
    const std::string& text = s.responses[0].completion.text;
    pids.insert(text.substr(text.find("pid=")));
    EXPECT_EQ(*s.responses[0].completion.prompt_tokens, 7);
  }
  EXPECT_EQ(pids.size(), 3u);
  auto metrics = (*store)->GetMetrics(1);
  for (const auto& m : *metrics) {
    if (m.name == "aligned_rate" && m.category.empty()) {
      EXPECT_EQ(*m.value, 100);
    }
  }
}

TEST(Exec, CrashedProcessIsRestartedAndItsRequestSentAgain) {
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "ex", 8);
  auto r = Plumb(tmp.path(), {"run", "--suite", manifest, "--model",
                              Model("--crash-on q3 --state " + tmp.path()), "--progress", "none"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.err.find("exited (status 3)"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("crashing on q3"), std::string::npos) << "the last stderr lines are shown";
  auto store = OpenSqliteStoreReadOnly(tmp.path() + "/results/plumb.db");
  auto samples = (*store)->GetSamples(1);
  for (const auto& s : *samples) {
    EXPECT_EQ(s.status, "done") << s.item_id;
    if (s.item_id == "q3") {
      EXPECT_EQ(s.responses[0].completion.attempts, 2);
    }
  }
}

TEST(Exec, ItemErrorsAreRecordedAndADeadCommandFailsTheRun) {
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "ex", 6);
  auto r = Plumb(tmp.path(), {"run", "--suite", manifest, "--model", Model("--error-on q2"),
                              "--progress", "none"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("exec: item 'q2': cannot answer q2"), std::string::npos) << r.err;
  auto dead = Plumb(tmp.path(), {"run", "--suite", manifest, "--model", Model("--die"),
                                 "--backend-option", "restarts=1", "--progress", "none"});
  EXPECT_EQ(dead.exit_code, 1) << dead.err;
  EXPECT_NE(dead.err.find("died 2 times; giving up"), std::string::npos) << dead.err;
  auto bad = Plumb(tmp.path(), {"run", "--suite", manifest, "--model", Model(""),
                                "--backend-option", "processes=x"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(
      bad.err,
      "plumb: error: backend 'exec': --backend-option processes must be a number from 0 to 256\n");
}

}  // namespace
}  // namespace plumb::testing
