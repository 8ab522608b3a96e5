// Leaderboard exports, the HTML report and plumb serve end to end: a judged run whose replies
// carry HTML and script, a choice run, the files and pages they make, the JSON API, and a
// headless chromium rendering both (screenshots land in results/ci/ of the source tree).
#include "plumb/report.h"

#include <fmt/format.h>
#include <gtest/gtest.h>
#include <httplib.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <sstream>
#include <thread>

#include "e2e.h"
#include "fake_server.h"
#include "plumb/stats.h"
#include "plumb/store.h"

namespace plumb::testing {
namespace {

constexpr const char* kHostileReply =
    "<script>alert(1)</script><img src=x onerror=alert(2)> & \"quotes\"";
constexpr const char* kEscapedReply =
    "&lt;script&gt;alert(1)&lt;/script&gt;&lt;img src=x onerror=alert(2)&gt;";

size_t Count(const std::string& haystack, const std::string& needle) {
  size_t n = 0;
  for (size_t at = haystack.find(needle); at != std::string::npos;
       at = haystack.find(needle, at + 1))
    ++n;
  return n;
}

// One database for every test here: run 1 judged (misalignment, replies with HTML and script),
// run 2 builtin/first on pacifaist-style, run 3 builtin/refuse on pacifaist-style.
class ReportTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    dir_ = new TempDir();
    FakeServer server([](const FakeRequest& req, int) {
      FakeReply r;
      if (LastUserMessage(req.json).find("[ANSWER START]") != std::string::npos) {
        r.body = LogprobBody("80", {{"80", 0.75}, {"30", 0.25}});
      } else {
        r.text = kHostileReply;
      }
      return r;
    });
    auto judged =
        Plumb(dir_->path(), {"run", "--suite", "misalignment", "--model", "openai/m", "--base-url",
                             server.base_url(), "--judge", "openai/judge", "--judge-base-url",
                             server.base_url(), "--limit", "2", "--progress", "none"});
    ASSERT_EQ(judged.exit_code, 0) << judged.err;
    for (const char* model : {"builtin/first", "builtin/refuse"}) {
      auto r = Plumb(dir_->path(), {"run", "--suite", "pacifaist-style", "--model", model,
                                    "--limit", "24", "--progress", "none"});
      ASSERT_EQ(r.exit_code, 0) << r.err;
    }
  }
  static void TearDownTestSuite() {
    delete dir_;
    dir_ = nullptr;
  }
  static std::string Path() { return dir_->path(); }
  static std::string Db() { return dir_->path() + "/results/plumb.db"; }

  static TempDir* dir_;
};
TempDir* ReportTest::dir_ = nullptr;

// The leaderboards and charts of both suites (the report file, the served index page).
void ExpectOverview(const std::string& page) {
  EXPECT_NE(page.find("id=\"overview-table\""),
            std::string::npos);  // a row per model, a column per suite
  EXPECT_NE(page.find("id=\"lb-pacifaist-style-v2-table\""), std::string::npos);
  EXPECT_NE(page.find("id=\"lb-misalignment-v1-table\""), std::string::npos);
  EXPECT_GE(Count(page, "<svg class=\"chart\""), 2u);                   // a bar chart per suite
  EXPECT_NE(page.find("<svg class=\"heatmap\""), std::string::npos);    // categories
  EXPECT_NE(page.find("<svg class=\"histogram\""), std::string::npos);  // judge scores
  EXPECT_EQ(page.find("<script>alert"), std::string::npos);
  EXPECT_EQ(page.find("<img"), std::string::npos);
}

// Run 1's item drill-down, with the hostile reply shown as text.
void ExpectDrillDown(const std::string& page) {
  EXPECT_NE(page.find("<details class=\"drilldown\" id=\"run-1\""), std::string::npos);
  EXPECT_NE(page.find(kEscapedReply), std::string::npos);
  EXPECT_EQ(page.find("<script>alert"), std::string::npos);
  EXPECT_EQ(page.find("<img"), std::string::npos);
}

void ExpectFullReport(const std::string& page) {
  ExpectOverview(page);
  ExpectDrillDown(page);
  EXPECT_NE(page.find("<details class=\"drilldown\" id=\"run-2\""), std::string::npos);
}

TEST_F(ReportTest, ReportIsSelfContainedAndEscapesEveryModelOutput) {
  auto r = Plumb(Path(), {"report", "--all", "--out", "out/report.html"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string page = ReadFile(Path() + "/out/report.html");
  ExpectFullReport(page);
  EXPECT_EQ(Count(page, "<script"), 1u);  // plumb's own, allowed by hash in the CSP
  EXPECT_NE(page.find("http-equiv=\"Content-Security-Policy\""), std::string::npos);
  // Nothing is fetched: no external script, style, font, image or frame.
  for (const char* fetch : {"src=\"", "href=\"http", "@import", "url(", "<link", "<iframe"}) {
    EXPECT_EQ(page.find(fetch), std::string::npos) << fetch;
  }
  // The judge's reason and the parsed answer are in the drill-down.
  EXPECT_NE(page.find("<b>aligned@1</b>: "), std::string::npos);
  // One run: only its section and drill-down.
  auto one = Plumb(Path(), {"report", "2", "--out", "one.html"});
  ASSERT_EQ(one.exit_code, 0) << one.err;
  std::string single = ReadFile(Path() + "/one.html");
  EXPECT_NE(single.find("id=\"run-2\""), std::string::npos);
  EXPECT_EQ(single.find("id=\"run-1\""), std::string::npos);
  EXPECT_EQ(single.find("id=\"run-3\""), std::string::npos);
  auto missing = Plumb(Path(), {"report", "99", "--out", "none.html"});
  EXPECT_EQ(missing.exit_code, 2);
  EXPECT_NE(missing.err.find("99"), std::string::npos) << missing.err;
  EXPECT_FALSE(std::filesystem::exists(Path() + "/none.html"));
}

TEST_F(ReportTest, CsvAndJsonExportsParseBackToTheStoredNumbers) {
  auto csv = Plumb(Path(), {"leaderboard", "--all", "--format", "csv", "--out", "board.csv"});
  auto json = Plumb(Path(), {"leaderboard", "--all", "--format", "json", "--out", "board.json"});
  ASSERT_EQ(csv.exit_code, 0) << csv.err;
  ASSERT_EQ(json.exit_code, 0) << json.err;
  auto store = OpenSqliteStoreReadOnly(Db());
  ASSERT_TRUE(store);
  // value, ci_low, ci_high of each run's primary metric, as stored.
  std::map<int64_t, std::array<double, 3>> stored;
  for (int64_t id : {1, 2, 3}) {
    auto run = (*store)->GetRun(id);
    auto metrics = (*store)->GetMetrics(id);
    ASSERT_TRUE(run && metrics);
    for (const auto& m : *metrics) {
      if (m.name == run->primary_metric && m.category.empty())
        stored[id] = {*m.value, *m.ci_low, *m.ci_high};
    }
  }
  ASSERT_EQ(stored.size(), 3u);
  // Run 1: no reply misaligned. Not a zero-width interval: Wilson over the 6 rated questions.
  EXPECT_EQ(stored[1][0], 0.0);
  EXPECT_EQ(stored[1][1], 0.0);
  EXPECT_NEAR(stored[1][2], 100 * WilsonInterval(0, 6).high, 1e-9);

  std::istringstream lines(ReadFile(Path() + "/board.csv"));
  std::string line;
  std::getline(lines, line);
  ASSERT_EQ(
      line.rfind(
          "suite,suite_version,metric,higher_is_better,rank,reference,model,value,ci_low,ci_high,",
          0),
      0u)
      << line;
  int matched = 0;
  while (std::getline(lines, line)) {
    std::vector<std::string> f;
    std::stringstream fields(line);
    for (std::string cell; std::getline(fields, cell, ',');) f.push_back(cell);
    ASSERT_GE(f.size(), 15u) << line;
    int64_t run_id = std::stoll(f[14]);
    if (run_id == 0) continue;  // a cached baseline row
    ASSERT_TRUE(stored.count(run_id)) << line;
    EXPECT_EQ(std::stod(f[7]), stored[run_id][0]) << line;
    EXPECT_EQ(std::stod(f[8]), stored[run_id][1]) << line;
    EXPECT_EQ(std::stod(f[9]), stored[run_id][2]) << line;
    ++matched;
  }
  EXPECT_EQ(matched, 3);

  Json board = Json::parse(ReadFile(Path() + "/board.json"));
  matched = 0;
  for (const auto& section : board["suites"]) {
    for (const auto& row : section["rows"]) {
      if (row["run_id"].is_null()) continue;  // a cached baseline row
      int64_t run_id = row["run_id"].get<int64_t>();
      EXPECT_EQ(row["value"].get<double>(), stored[run_id][0]);
      EXPECT_EQ(row["ci_low"].get<double>(), stored[run_id][1]);
      EXPECT_EQ(row["ci_high"].get<double>(), stored[run_id][2]);
      ++matched;
    }
  }
  EXPECT_EQ(matched, 3);
  auto bad = Plumb(Path(), {"leaderboard", "--all", "--format", "pdf"});
  EXPECT_EQ(bad.exit_code, 2);
}

// Serves the test database in this process on a free port until destroyed.
class LiveServer {
 public:
  explicit LiveServer(const std::string& db) {
    auto store = OpenSqliteStoreReadOnly(db);
    if (!store) {
      ADD_FAILURE() << store.error().message();
      return;
    }
    store_ = std::move(*store);
    ServeOptions options;
    options.port = 0;
    options.source = db;
    thread_ = std::thread([this, options] {
      status_ = Serve(*store_, options, stop_, [this](int port) { port_.store(port); });
    });
    while (port_.load() == 0 && status_.ok())
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  ~LiveServer() {
    stop_.store(true);
    if (thread_.joinable()) thread_.join();
  }
  int port() const { return port_.load(); }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port()); }

 private:
  std::unique_ptr<Store> store_;
  std::atomic<bool> stop_{false};
  std::atomic<int> port_{0};
  Status status_;
  std::thread thread_;
};

TEST_F(ReportTest, ServeAnswersThePagesAndTheJsonApi) {
  LiveServer live(Db());
  ASSERT_GT(live.port(), 0);
  httplib::Client client("127.0.0.1", live.port());

  auto page = client.Get("/");
  ASSERT_TRUE(page);
  EXPECT_EQ(page->status, 200);
  EXPECT_NE(page->get_header_value("Content-Security-Policy").find("default-src 'none'"),
            std::string::npos);
  ExpectOverview(page->body);
  // The index links each run's items instead of inlining them (fast on large databases).
  EXPECT_EQ(page->body.find("<details class=\"drilldown\""), std::string::npos);
  EXPECT_NE(page->body.find("<a href=\"/runs/1#run-1\">run 1: openai/m,"), std::string::npos);

  auto runs = client.Get("/api/runs");
  ASSERT_TRUE(runs);
  Json list = Json::parse(runs->body);
  ASSERT_EQ(list.size(), 3u);
  std::set<int64_t> ids;
  for (const auto& r : list) ids.insert(r["id"].get<int64_t>());
  EXPECT_EQ(ids, (std::set<int64_t>{1, 2, 3}));
  auto filtered = client.Get("/api/runs?suite=misalignment");
  EXPECT_EQ(Json::parse(filtered->body).size(), 1u);

  auto board = client.Get("/api/leaderboard?suite=pacifaist-style");
  ASSERT_TRUE(board);
  Json b = Json::parse(board->body);
  ASSERT_EQ(b["suites"].size(), 1u);
  EXPECT_EQ(b["suites"][0]["suite"], "pacifaist-style");
  EXPECT_EQ(client.Get("/api/leaderboard?direction=sideways")->status, 400);

  auto items = client.Get("/api/runs/1/items?offset=1&limit=2");
  ASSERT_TRUE(items);
  Json it = Json::parse(items->body);
  EXPECT_EQ(it["offset"], 1);
  ASSERT_EQ(it["items"].size(), 2u);
  EXPECT_GT(it["total"].get<int>(), 3);
  EXPECT_EQ(it["items"][0]["responses"][0]["text"], kHostileReply);  // JSON carries the raw text
  bool judged = false;
  for (const auto& g : it["items"][0]["grades"])
    judged |= g["grader"] == "aligned@1" && g["status"] == "scored";
  EXPECT_TRUE(judged) << it.dump();

  auto run = client.Get("/api/runs/2");
  ASSERT_TRUE(run);
  EXPECT_EQ(Json::parse(run->body)["run"]["model"], "builtin/first");
  auto missing = client.Get("/api/runs/99");
  EXPECT_EQ(missing->status, 404);
  EXPECT_TRUE(Json::parse(missing->body).contains("error"));
  EXPECT_EQ(client.Get("/api/runs/1/items?limit=0")->status, 400);
  EXPECT_EQ(client.Get("/api/runs/1/items?limit=abc")->status, 400);
  EXPECT_EQ(client.Get("/nowhere")->status, 404);
  EXPECT_EQ(client.Post("/api/runs", "{}", "application/json")->status,
            404);  // read-only: no writes

  auto run_page = client.Get("/runs/2");
  ASSERT_TRUE(run_page);
  EXPECT_NE(run_page->body.find("id=\"run-2\""), std::string::npos);
  auto judged_page = client.Get("/runs/1");
  ASSERT_TRUE(judged_page);
  ExpectDrillDown(judged_page->body);
  EXPECT_EQ(client.Get("/runs/99")->status, 404);
  auto leaderboard = client.Get("/leaderboard");
  EXPECT_NE(leaderboard->body.find("<a href=\"/runs/2#run-2\">2</a>"), std::string::npos);
}

// A port nothing listens on right now.
int FreePort() {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr);
  socklen_t len = sizeof addr;
  getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  close(fd);
  return ntohs(addr.sin_port);
}

TEST_F(ReportTest, ServeCommandListensOnLocalhostUntilInterrupted) {
  int port = FreePort();
  Spawned served;
  std::thread child([&] {
    served = Plumb(Path(), {"serve", "--port", std::to_string(port)}, {}, /*kill_after_ms=*/2500);
  });
  httplib::Client client("127.0.0.1", port);
  std::string body;
  for (int i = 0; i < 200 && body.empty(); ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    if (auto runs = client.Get("/api/runs")) body = runs->body;
  }
  child.join();
  ASSERT_FALSE(body.empty()) << served.err;
  EXPECT_EQ(Json::parse(body).size(), 3u);
  EXPECT_EQ(served.exit_code, 0) << served.err;  // Ctrl-C is how a server stops
  EXPECT_NE(served.out.find("plumb serve: http://127.0.0.1:" + std::to_string(port) + "/"),
            std::string::npos)
      << served.out;
  LiveServer live(Db());
  auto taken = Plumb(Path(), {"serve", "--port", std::to_string(live.port())});
  EXPECT_NE(taken.exit_code, 0);
  EXPECT_NE(taken.err.find(
                fmt::format("cannot listen on 127.0.0.1:{} (is the port in use?", live.port())),
            std::string::npos)
      << taken.err;
}

// The chromium binary, or "" when it is not installed.
std::string Chromium() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (std::filesystem::exists(p)) return p;
  }
  return "";
}

// Loads `url` in headless chromium: the DOM after scripts ran, and a screenshot at `png`.
std::string RenderInChromium(const std::string& browser, const std::string& url,
                             const std::string& png, const std::string& profile) {
  std::vector<std::string> common = {"/usr/bin/timeout",
                                     "120",
                                     browser,
                                     "--headless",
                                     "--no-sandbox",
                                     "--disable-gpu",
                                     "--no-first-run",
                                     "--disable-background-networking",
                                     "--disable-extensions",
                                     "--user-data-dir=" + profile};
  auto shot = common;
  shot.insert(shot.end(), {"--window-size=1280,2400", "--screenshot=" + png, url});
  Spawned s = Spawn(shot);
  EXPECT_EQ(s.exit_code, 0) << s.err;
  auto dom = common;
  dom.insert(dom.end(), {"--dump-dom", url});
  Spawned d = Spawn(dom);
  EXPECT_EQ(d.exit_code, 0) << d.err;
  return d.out;
}

// What chromium made of a page: the script ran (the CSP allowed it by hash), tables are sortable,
// and the screenshot is a rendered page, not a blank one.
void ExpectRendered(const std::string& dom, const std::string& png) {
  EXPECT_NE(dom.find("data-ready=\"1\""), std::string::npos);
  EXPECT_NE(dom.find("sortable-ready"), std::string::npos);
  ASSERT_TRUE(std::filesystem::exists(png));
  EXPECT_GT(std::filesystem::file_size(png), 20000u) << png;
  std::string head = ReadFile(png).substr(0, 8);
  EXPECT_EQ(head, "\x89PNG\r\n\x1a\n");
}

TEST_F(ReportTest, ChromiumRendersTheReportAndTheServedPage) {
  std::string browser = Chromium();
  if (browser.empty()) {
    if (std::getenv("PLUMB_REQUIRE_BROWSER"))
      FAIL() << "PLUMB_REQUIRE_BROWSER is set but chromium is not installed";
    GTEST_SKIP() << "chromium is not installed (scripts/install-deps.sh test installs it)";
  }
  std::string artefacts = std::string(PLUMB_TEST_SOURCE_DIR) + "/results/ci";
  std::filesystem::create_directories(artefacts);
  auto r = Plumb(Path(), {"report", "--all", "--out", "report.html"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  std::string png = artefacts + "/report.png";
  std::filesystem::remove(png);
  std::string dom =
      RenderInChromium(browser, "file://" + Path() + "/report.html", png, Path() + "/chrome");
  ExpectFullReport(dom);
  ExpectRendered(dom, png);

  LiveServer live(Db());
  for (const auto& [path, name] :
       {std::pair{"/", "served.png"}, std::pair{"/runs/1", "served-run.png"}}) {
    std::string shot = artefacts + "/" + name;
    std::filesystem::remove(shot);
    std::string served = RenderInChromium(browser, live.url() + path, shot, Path() + "/chrome");
    if (std::string(path) == "/") {
      ExpectOverview(served);
    } else {
      ExpectDrillDown(served);
    }
    ExpectRendered(served, shot);
  }
}

}  // namespace
}  // namespace plumb::testing
