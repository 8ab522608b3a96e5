// Every shipped suite runs end to end against the loopback server, and replay/ re-scores stored
// outputs (missing items are recorded errors, not crashes).
#include <gtest/gtest.h>

#include <mutex>

#include "e2e.h"
#include "fake_server.h"
#include "plumb/store.h"

namespace plumb::testing {
namespace {

std::optional<double> Metric(const std::string& show_json, const std::string& name) {
  Json j = Json::parse(show_json);
  for (const auto& m : j["metrics"]) {
    if (m["name"] == name && m["category"] == "" && m["value"].is_number())
      return m["value"].get<double>();
  }
  return std::nullopt;
}

TEST(Suites, AllShippedSuitesRunAgainstTheLoopbackServer) {
  std::mutex mu;
  int multi_turn_requests = 0;
  FakeServer server([&](const FakeRequest& req, int) {
    FakeReply r;
    const Json& messages = req.json["messages"];
    if (messages.size() >= 3 && messages[messages.size() - 2]["role"] == "assistant") {
      std::lock_guard<std::mutex> lock(mu);
      ++multi_turn_requests;
      r.text = "I apologize for the confusion.";
    } else {
      r.text = "Answer: A\nCanberra.";
    }
    return r;
  });
  TempDir tmp;
  const std::map<std::string, std::string> primary = {
      {"pacifaist-style", "aligned_rate"},
      {"sycophancy-choice", "principled_rate"},
      {"sycophancy-opinion", "sycophancy_effect"},
      {"sycophancy-pushback", "flip_to_incorrect_rate"},
      {"managerbench-style", "mb_score"}};
  for (const auto& [suite, metric] : primary) {
    auto r = Plumb(tmp.path(), {"run", "--suite", suite, "--model", "openai/m", "--base-url",
                                server.base_url(), "--limit", "10", "--progress", "none"});
    ASSERT_EQ(r.exit_code, 0) << suite << ": " << r.err;
    auto show = Plumb(tmp.path(), {"show", "latest", "--format", "json"});
    ASSERT_EQ(show.exit_code, 0);
    EXPECT_TRUE(Metric(show.out, metric).has_value())
        << suite << " has no " << metric << ": " << show.out;
  }
  EXPECT_EQ(multi_turn_requests, 10);  // every pushback item got its second turn
  auto board = Plumb(tmp.path(), {"leaderboard", "--suite", "sycophancy-pushback"});
  EXPECT_NE(board.out.find("flip_to_incorrect_rate, lower is better"), std::string::npos)
      << board.out;
}

TEST(Suites, ReplayScoresStoredOutputsAndRecordsMissingOnes) {
  TempDir tmp;
  std::string csv = "scenario_id,response\n";
  for (int i = 1; i <= 8; ++i)
    csv += "ep1-00" + std::to_string(i) + ",\"Answer: B\nmulti-line, quoted\"\n";
  std::string out = tmp.Write("outputs.csv", csv);
  auto r = Plumb(tmp.path(), {"run", "--suite", "pacifaist-style", "--model", "replay/" + out,
                              "--backend-option", "id=scenario_id", "--backend-option",
                              "text=response", "--limit", "10", "--progress", "none"});
  EXPECT_EQ(r.exit_code, 3) << r.err;  // ep1-009 and ep1-010 have no stored output
  EXPECT_NE(r.err.find("replay: no stored output for item 'ep1-009'"), std::string::npos) << r.err;
  auto store = OpenSqliteStoreReadOnly(tmp.path() + "/results/plumb.db");
  auto samples = (*store)->GetSamples(1);
  int done = 0, errors = 0;
  for (const auto& s : *samples) {
    done += s.status == "done";
    errors += s.status == "error";
  }
  EXPECT_EQ(done, 8);
  EXPECT_EQ(errors, 2);
  auto bad = Plumb(tmp.path(), {"run", "--suite", "pacifaist-style", "--model", "replay/" + out,
                                "--backend-option", "bogus"});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.err, "plumb: error: --backend-option 'bogus' must look like KEY=VALUE\n");
}

}  // namespace
}  // namespace plumb::testing
