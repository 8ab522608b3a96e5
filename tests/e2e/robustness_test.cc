// issue 11 end to end: one owner per run (concurrent resumes, killed rescores), resume reusing
// the run's own settings, read-only databases, a full disk.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <mutex>
#include <set>
#include <thread>

#include "e2e.h"
#include "fake_server.h"
#include "plumb/hash.h"
#include "plumb/store.h"

namespace plumb::testing {
namespace {

FakeReply SlowDeterministic(const FakeRequest& req, int delay_ms) {
  FakeReply r;
  std::string prompt = LastUserMessage(req.json);
  r.text = std::string("Answer: ") + "ABCD"[DeriveSeed(0, prompt) % 4];
  r.delay_ms = delay_ms;
  return r;
}

TEST(Robustness, Issue11TwoResumesOfOneRunSendEachPendingSampleOnce) {
  std::mutex mu;
  std::map<std::string, int> asked;
  std::atomic<bool> resuming{false};
  std::atomic<int> active{0}, most{0};
  FakeServer server([&](const FakeRequest& req, int) {
    if (resuming) {
      std::lock_guard<std::mutex> lock(mu);
      asked[LastUserMessage(req.json)]++;
      most = std::max(most.load(), ++active);
    }
    FakeReply r = SlowDeterministic(req, 0);
    std::this_thread::sleep_for(std::chrono::milliseconds(40));
    if (resuming) --active;
    return r;
  });
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "twice", 80);
  auto first = Plumb(tmp.path(),
                     {"run", "--suite", manifest, "--model", "openai/m", "--base-url",
                      server.base_url(), "--concurrency", "3", "--progress", "none"},
                     {}, /*kill_after_ms=*/400);
  ASSERT_EQ(first.exit_code, 130) << first.err;
  int64_t pending = 0;
  {
    auto store = OpenSqliteStoreReadOnly(tmp.path() + "/results/plumb.db");
    auto samples = (*store)->GetSamples(1, false);
    for (const auto& s : *samples) pending += s.status == "pending";
  }
  ASSERT_GT(pending, 20);
  std::this_thread::sleep_for(std::chrono::milliseconds(200));  // abandoned calls drain
  resuming = true;
  Spawned a, b;
  std::thread ta([&] { a = Plumb(tmp.path(), {"resume", "1", "--progress", "none"}); });
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  std::thread tb([&] { b = Plumb(tmp.path(), {"resume", "1", "--progress", "none"}); });
  ta.join();
  tb.join();
  EXPECT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(b.exit_code, 2) << b.err;
  EXPECT_NE(b.err.find("run 1 is being executed by process"), std::string::npos) << b.err;
  EXPECT_EQ(static_cast<int64_t>(asked.size()), pending);
  for (const auto& [prompt, n] : asked) EXPECT_EQ(n, 1) << prompt;
  // The run's own concurrency (3), not the default 32, on resume.
  EXPECT_LE(most.load(), 3);
}

TEST(Robustness, Issue11AKilledRunReadsBackInterruptedAndResumes) {
  FakeServer server([](const FakeRequest& req, int) { return SlowDeterministic(req, 30); });
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "killed", 60);
  auto killed = Plumb(tmp.path(),
                      {"run", "--suite", manifest, "--model", "openai/m", "--base-url",
                       server.base_url(), "--concurrency", "2", "--progress", "none"},
                      {}, /*kill_after_ms=*/500, /*kill_signal=*/9);
  ASSERT_EQ(killed.exit_code, 128 + 9);
  auto shown = Plumb(tmp.path(), {"show", "latest", "--format", "json"});
  ASSERT_EQ(shown.exit_code, 0) << shown.err;
  EXPECT_EQ(Json::parse(shown.out)["run"]["status"], "interrupted") << shown.out;
  auto resumed = Plumb(tmp.path(), {"resume", "latest", "--progress", "none"});
  EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
}

TEST(Robustness, Issue11AKilledRescoreIsInterruptedAndResumable) {
  std::atomic<bool> slow_judge{false};
  FakeServer server([&](const FakeRequest& req, int) {
    FakeReply r;
    if (req.json.value("logprobs", false)) {
      r.body = LogprobBody("90", {{"90", 1.0}});
      r.delay_ms = slow_judge ? 60 : 0;
    } else {
      r.text = "A helpful answer.";
    }
    return r;
  });
  TempDir tmp;
  std::string items;
  for (int i = 0; i < 40; ++i)
    items += "{\"id\": \"q" + std::to_string(i) + "\", \"prompt\": \"Question " +
             std::to_string(i) + "?\"}\n";
  tmp.Write("mis/items.jsonl", items);
  tmp.Write("mis/suite.yaml",
            "id: mis\nkind: misalignment\nfields: {question: prompt}\n"
            "variants: [plain]\nfields: {}\n");
  // The misalignment kind takes `prompt` items as imported ones.
  tmp.Write("mis/suite.yaml", "id: mis\nkind: misalignment\n");
  std::vector<std::string> judge = {"--judge", "openai/j", "--judge-base-url", server.base_url()};
  std::vector<std::string> run = {"run",      "--suite",    tmp.path() + "/mis", "--model",
                                  "openai/m", "--base-url", server.base_url(),   "--progress",
                                  "none"};
  run.insert(run.end(), judge.begin(), judge.end());
  ASSERT_EQ(Plumb(tmp.path(), run).exit_code, 0);
  slow_judge = true;
  std::vector<std::string> rescore = {"rescore", "1", "--concurrency", "2", "--cache", "never"};
  rescore.insert(rescore.end(), judge.begin(), judge.end());
  auto killed = Plumb(tmp.path(), rescore, {}, /*kill_after_ms=*/700, /*kill_signal=*/9);
  ASSERT_EQ(killed.exit_code, 128 + 9) << killed.err;
  auto shown = Plumb(tmp.path(), {"show", "latest", "--format", "json"});
  ASSERT_EQ(Json::parse(shown.out)["run"]["status"], "interrupted") << shown.out;
  int requests = server.request_count();
  auto resumed = Plumb(tmp.path(), {"resume", "latest", "--progress", "none"});
  ASSERT_EQ(resumed.exit_code, 0) << resumed.err;
  EXPECT_NE(resumed.out.find("completed"), std::string::npos);
  // Only judge calls: the model under test is never asked again.
  auto store = OpenSqliteStoreReadOnly(tmp.path() + "/results/plumb.db");
  auto two = (*store)->GetRun(2);
  EXPECT_EQ(two->status, "completed");
  EXPECT_EQ(*two->parent_run_id, 1);
  EXPECT_LE(server.request_count() - requests, 80);  // at most 40 samples x 2 judgments
}

// The user may read the database but not write it, nor the folder it is in.
TEST(Robustness, Issue11ReadersWorkOnADatabaseTheUserCannotWrite) {
  TempDir tmp;
  std::string db = tmp.path() + "/ro/results.db";
  std::filesystem::create_directories(tmp.path() + "/ro");
  ASSERT_EQ(Plumb(tmp.path(), {"--db", db, "run", "--suite", "pacifaist-style", "--model",
                               "builtin/first", "--limit", "8", "--progress", "none"})
                .exit_code,
            0);
  ASSERT_EQ(Plumb(tmp.path(), {"--db", db, "run", "--suite", "pacifaist-style", "--model",
                               "builtin/last", "--limit", "8", "--progress", "none"})
                .exit_code,
            0);
  std::string out = tmp.path() + "/out";
  std::filesystem::create_directories(out);
  chmod(tmp.path().c_str(), 0755);
  chmod(out.c_str(), 0777);
  chmod(db.c_str(), 0444);
  chmod((tmp.path() + "/ro").c_str(), 0555);
  // As root, permissions do not bind: run the readers as nobody.
  std::vector<std::string> as_user;
  if (geteuid() == 0)
    as_user = {"/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"};
  auto reader = [&](std::vector<std::string> args, int kill_after_ms = 0) {
    std::vector<std::string> argv = as_user;
    argv.push_back(PLUMB_BINARY);
    argv.push_back("--db");
    argv.push_back(db);
    argv.insert(argv.end(), args.begin(), args.end());
    return Spawn(argv, {}, out, kill_after_ms);
  };
  for (auto args :
       std::vector<std::vector<std::string>>{{"show", "latest"},
                                             {"show", "1", "--format", "json"},
                                             {"leaderboard"},
                                             {"leaderboard", "--format", "html"},
                                             {"report", "--out", out + "/report.html"},
                                             {"compare", "1", "2"},
                                             {"gate", "--baseline", "1", "--candidate", "2"}}) {
    auto r = reader(args);
    EXPECT_TRUE(r.exit_code == 0 || (args[0] == "gate" && r.exit_code == 1))
        << args[0] << " exit " << r.exit_code << ": " << r.err;
    EXPECT_EQ(r.err.find("readonly"), std::string::npos) << args[0] << ": " << r.err;
  }
  EXPECT_TRUE(std::filesystem::exists(out + "/report.html"));
  // serve, on a port of its own, answers from the same file.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  int port = ntohs(addr.sin_port);
  Spawned served;
  std::thread child([&] { served = reader({"serve", "--port", std::to_string(port)}, 2500); });
  httplib::Client client("127.0.0.1", port);
  std::string body;
  for (int i = 0; i < 200 && body.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (auto runs = client.Get("/api/runs")) body = runs->body;
  }
  child.join();
  ASSERT_FALSE(body.empty()) << served.err;
  EXPECT_EQ(Json::parse(body).size(), 2u);
  // Writers say plainly that they cannot write.
  auto tag = reader({"tag", "production", "1"});
  EXPECT_NE(tag.exit_code, 0);
  chmod((tmp.path() + "/ro").c_str(), 0755);
}

TEST(Robustness, Issue11AFullDiskStopsTheRunOnceAndItResumesLater) {
  TempDir tmp;
  // A file-size limit plays the full disk: writes past it fail with EFBIG.
  std::string db = tmp.path() + "/full.db";
  auto r = Spawn({"/bin/sh", "-c",
                  std::string("trap '' XFSZ; ulimit -f 400; exec ") + PLUMB_BINARY + " --db " + db +
                      " run --suite sycophancy-pushback --model builtin/random --epochs 20 "
                      "--progress none"},
                 {}, tmp.path());
  ASSERT_EQ(r.exit_code, 1) << r.err;
  EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;  // one message
  EXPECT_NE(r.err.find("plumb resume 1"), std::string::npos) << r.err << r.out;
  auto shown = Plumb(tmp.path(), {"--db", db, "show", "1", "--format", "json"});
  EXPECT_EQ(Json::parse(shown.out)["run"]["status"], "interrupted");
  auto resumed = Plumb(tmp.path(), {"--db", db, "resume", "1", "--progress", "none"});
  EXPECT_EQ(resumed.exit_code, 0) << resumed.err;
  // A report that cannot be written leaves nothing behind.
  auto report = Spawn({"/bin/sh", "-c",
                       std::string("trap '' XFSZ; ulimit -f 64; exec ") + PLUMB_BINARY + " --db " +
                           db + " report --out " + tmp.path() + "/rep/r.html"},
                      {}, tmp.path());
  EXPECT_EQ(report.exit_code, 1);
  EXPECT_TRUE(std::filesystem::is_empty(tmp.path() + "/rep"));
}

// Keys that come back: a proxy or model echoing the key, a subprocess printing it.
TEST(Robustness, Issue11EchoedKeysNeverReachTheStoreTheCacheTheLogOrTheReport) {
  // No known key shape ("sk-...") to give it away: only its configuration makes it a secret.
  const std::string key = "zz-custom-secret-8f3e1";
  FakeServer server([&](const FakeRequest& req, int) {
    FakeReply r;
    auto auth = req.headers.find("authorization");
    std::string header = auth == req.headers.end() ? "" : auth->second;
    r.text = "Answer: A. Your key was " + header.substr(header.find(' ') + 1);
    return r;
  });
  TempDir tmp;
  std::string manifest = WriteChoiceSuite(tmp, "echo", 6, "generation: {temperature: 0}\n");
  tmp.Write("plumb.yaml", "models:\n  mine:\n    spec: openai/m\n    base_url: " +
                              server.base_url() + "\n    api_key_env: MY_KEY\n");
  auto r = Plumb(tmp.path(), {"run", "--suite", manifest, "--model", "mine", "--progress", "none"},
                 {{"MY_KEY", key}});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto e = Plumb(tmp.path(),
                 {"-v", "run", "--suite", manifest, "--model",
                  std::string("exec/") + EXEC_MODEL + " --leak MY_KEY", "--progress", "none"},
                 {{"MY_KEY", key}});
  ASSERT_EQ(e.exit_code, 0) << e.err;
  EXPECT_EQ(e.err.find(key), std::string::npos) << e.err;
  EXPECT_NE(e.err.find("my key is [redacted]"), std::string::npos) << e.err;
  auto report = Plumb(tmp.path(), {"report", "--out", tmp.path() + "/r.html"});
  ASSERT_EQ(report.exit_code, 0) << report.err;
  std::string db =
      ReadFile(tmp.path() + "/results/plumb.db") + ReadFile(tmp.path() + "/results/plumb.db-wal");
  std::string html = ReadFile(tmp.path() + "/r.html");
  for (const auto& where : {db, html, r.out + r.err, e.out}) {
    EXPECT_EQ(where.find(key), std::string::npos);
  }
  EXPECT_NE(html.find("[redacted]"), std::string::npos);
}

}  // namespace
}  // namespace plumb::testing
