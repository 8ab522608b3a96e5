// make bench: the leaderboard on a large results database. Builds (through the Store API) a
// database of --suites suites x --models models x --runs runs each, every run with --samples
// samples of two scores (one million score rows by default) plus a reply per sample, then times
// BuildLeaderboard + FormatLeaderboard in this process and `plumb leaderboard --all` as a user
// runs it. Target: under 200 ms for both (median). Exits 1 when missed.
#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <random>
#include <string>
#include <thread>

#include "plumb/report.h"
#include "plumb/stats.h"
#include "plumb/store.h"
#include "postgres_server.h"
#include "subprocess.h"

using plumb::testing::Spawn;
using plumb::testing::TempDir;

namespace {

struct Args {
  std::string plumb = PLUMB_BINARY_DEFAULT;
  int suites = 5;
  int models = 20;
  int runs = 2;  // per suite and model: the leaderboard picks the newest
  int samples = 2500;
  int repeats = 11;
  double target_ms = 200;
  bool postgres = false;  // --engine postgres: a throwaway PostgreSQL server, as the tests start
};

Args Parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i], v = argv[i + 1];
    if (k == "--plumb")
      a.plumb = v;
    else if (k == "--suites")
      a.suites = std::stoi(v);
    else if (k == "--models")
      a.models = std::stoi(v);
    else if (k == "--runs")
      a.runs = std::stoi(v);
    else if (k == "--samples")
      a.samples = std::stoi(v);
    else if (k == "--repeats")
      a.repeats = std::stoi(v);
    else if (k == "--engine" && (v == "sqlite" || v == "postgres"))
      a.postgres = v == "postgres";
    else {
      fmt::print(stderr,
                 "usage: leaderboard_bench [--plumb PATH] [--suites S] [--models M] [--runs R] "
                 "[--samples N] [--repeats K] [--engine sqlite|postgres]\n");
      std::exit(2);
    }
  }
  return a;
}

double Ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - since)
      .count();
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

// One completed run: `samples` samples over 8 categories, each with a choice score and a
// refusal score, and the metrics a choice suite stores (overall and per category).
plumb::Status AddRun(plumb::Store& store, const std::string& suite, const std::string& model,
                     int samples, double p_aligned, std::mt19937_64& rng) {
  plumb::RunRecord run;
  run.started_at = "2026-11-26T00:00:00Z";
  run.status = "running";
  run.plumb_version = "bench";
  run.suite_id = suite;
  run.suite_version = 1;
  run.suite_hash = "bench";
  run.primary_metric = "aligned_rate";
  run.model_spec = model;
  run.backend_id = "bench@1";
  run.n_samples = samples;
  std::vector<plumb::Item> items;
  std::vector<std::pair<std::string, int>> planned;
  std::vector<plumb::Json> presentations;
  for (int i = 0; i < samples; ++i) {
    plumb::Item item;
    item.id = fmt::format("q{:05}", i);
    item.category = fmt::format("c{}", i % 8);
    item.fields = {{"prompt", "Which option do you choose?"},
                   {"options", {"yes", "no", "wait", "ask"}}};
    items.push_back(item);
    planned.emplace_back(item.id, 0);
    presentations.push_back(plumb::Json::object());
  }
  PLUMB_ASSIGN_OR_RETURN(int64_t id, store.CreateRun(run, items, planned, presentations));
  std::bernoulli_distribution aligned(p_aligned);
  std::vector<int64_t> k(8, 0), n(8, 0);
  for (int i = 0; i < samples; ++i) {
    bool a = aligned(rng);
    k[static_cast<size_t>(i % 8)] += a;
    n[static_cast<size_t>(i % 8)] += 1;
    plumb::SampleResult r;
    r.item_id = items[static_cast<size_t>(i)].id;
    r.ok = true;
    plumb::ResponseRecord resp;
    resp.item_id = r.item_id;
    resp.ok = true;
    resp.completion.text = a ? "Answer: A" : "Answer: C";
    resp.completion.finish_reason = "stop";
    r.responses.push_back(resp);
    r.grades.push_back(
        {"choice@1", plumb::GradeStatus::kScored, a ? 1.0 : 0.0, a ? "A" : "C", {}, ""});
    r.grades.push_back({"refusal@1", plumb::GradeStatus::kScored, 0.0, "", {}, ""});
    store.Enqueue(id, std::move(r));
  }
  PLUMB_RETURN_IF_ERROR(store.Flush());
  std::vector<plumb::Metric> metrics;
  auto proportion = [&](const std::string& name, const std::string& category, int64_t kk,
                        int64_t nn) {
    plumb::Interval ci = plumb::WilsonInterval(kk, nn);
    metrics.push_back({name, category, 100.0 * static_cast<double>(kk) / static_cast<double>(nn),
                       100 * ci.low, 100 * ci.high, nn, kk, "wilson", plumb::Json::object(),
                       nullptr});
  };
  int64_t total_k = 0;
  for (size_t c = 0; c < 8; ++c) {
    proportion("aligned_rate", fmt::format("c{}", c), k[c], n[c]);
    proportion("refusal_rate", fmt::format("c{}", c), 0, n[c]);
    total_k += k[c];
  }
  proportion("aligned_rate", "", total_k, samples);
  proportion("refusal_rate", "", 0, samples);
  proportion("error_rate", "", 0, samples);
  proportion("parse_failure_rate", "", 0, samples);
  PLUMB_RETURN_IF_ERROR(store.PutMetrics(id, metrics));
  return store.FinishRun(id, "completed", "");
}

}  // namespace

int main(int argc, char** argv) {
  Args a = Parse(argc, argv);
  a.plumb = std::filesystem::absolute(a.plumb).string();  // the child runs in the scratch folder
  TempDir dir;
  std::string db = dir.path() + "/bench.db";
  if (a.postgres) {
    std::string why;
    plumb::testing::PostgresServer* pg = plumb::testing::PostgresServer::Shared(&why);
    if (pg == nullptr) {
      fmt::print(stderr, "leaderboard_bench: no PostgreSQL server: {}\n", why);
      return 2;
    }
    db = pg->NewDatabase();
  }
  auto start = std::chrono::steady_clock::now();
  {
    auto store = plumb::OpenStore(db);
    if (!store) {
      fmt::print(stderr, "leaderboard_bench: {}\n", store.error().message());
      return 2;
    }
    std::mt19937_64 rng(7);
    for (int r = 0; r < a.runs; ++r) {
      for (int s = 0; s < a.suites; ++s) {
        for (int m = 0; m < a.models; ++m) {
          double p = 0.3 + 0.6 * m / std::max(1, a.models - 1);
          plumb::Status st = AddRun(**store, fmt::format("suite-{}", s),
                                    fmt::format("openai/model-{:02}", m), a.samples, p, rng);
          if (!st.ok()) {
            fmt::print(stderr, "leaderboard_bench: {}\n", st.message());
            return 2;
          }
        }
      }
    }
  }
  int64_t runs = int64_t{a.runs} * a.suites * a.models;
  int64_t scores = runs * a.samples * 2;
  fmt::print("database ({}): {} runs, {} samples, {} score rows, {}built in {:.1f} s\n",
             a.postgres ? "PostgreSQL" : "SQLite", runs, runs * a.samples, scores,
             a.postgres ? std::string()
                        : fmt::format("{:.0f} MB, ",
                                      static_cast<double>(std::filesystem::file_size(db)) / 1e6),
             Ms(start) / 1000);

  auto store = plumb::OpenStoreReadOnly(db);
  std::vector<double> in_process, cli;
  size_t rows = 0;
  for (int i = 0; i < a.repeats; ++i) {
    auto t = std::chrono::steady_clock::now();
    auto board = plumb::BuildLeaderboard(**store, plumb::LeaderboardQuery{}, nullptr);
    auto text = plumb::FormatLeaderboard(*board, "md");
    in_process.push_back(Ms(t));
    rows = 0;
    for (const auto& s : board->sections) rows += s.rows.size();
    if (!text) return 2;
  }
  for (int i = 0; i < a.repeats; ++i) {
    auto r = Spawn({a.plumb, "leaderboard", "--all", "--db", db}, {}, dir.path());
    if (r.exit_code != 0) {
      fmt::print(stderr, "leaderboard_bench: plumb leaderboard failed: {}\n", r.err);
      return 2;
    }
    cli.push_back(r.wall_seconds * 1000);
  }
  // The HTML report on the same database, for information (no target): it reads every shown
  // sample (1000 per run by default), so it grows with the number of runs.
  auto report =
      Spawn({a.plumb, "report", "--all", "--db", db, "--out", dir.path() + "/report.html"}, {},
            dir.path());
  if (report.exit_code != 0) {
    fmt::print(stderr, "leaderboard_bench: plumb report failed: {}\n", report.err);
    return 2;
  }
  fmt::print("plumb report --all: {:.2f} s, {:.1f} MB of HTML, peak RSS {} MB\n",
             report.wall_seconds,
             static_cast<double>(std::filesystem::file_size(dir.path() + "/report.html")) / 1e6,
             report.max_rss_kb / 1024);
  // plumb serve's index page on the same database, for information: leaderboards, charts and
  // links to each run's items.
  double served_ms = 0;
  {
    std::atomic<bool> stop{false};
    std::atomic<int> port{0};
    plumb::ServeOptions options;
    options.port = 0;
    std::thread server(
        [&] { (void)plumb::Serve(**store, options, stop, [&](int p) { port.store(p); }); });
    while (port.load() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(5));
    httplib::Client client("127.0.0.1", port.load());
    std::vector<double> times;
    for (int i = 0; i < 5; ++i) {
      auto t = std::chrono::steady_clock::now();
      auto res = client.Get("/");
      times.push_back(Ms(t));
      if (!res || res->status != 200) {
        fmt::print(stderr, "leaderboard_bench: GET / failed\n");
        stop.store(true);
        server.join();
        return 2;
      }
    }
    stop.store(true);
    server.join();
    served_ms = Median(times);
  }
  fmt::print("plumb serve, GET /: median {:.1f} ms\n", served_ms);
  double ip = Median(in_process), c = Median(cli);
  fmt::print(
      "leaderboard ({} sections, {} rows): in process median {:.1f} ms (max {:.1f}); "
      "plumb leaderboard --all median {:.1f} ms (max {:.1f}); target < {:.0f} ms\n",
      a.suites, rows, ip, *std::max_element(in_process.begin(), in_process.end()), c,
      *std::max_element(cli.begin(), cli.end()), a.target_ms);
  bool ok = scores < 1000000 || (ip < a.target_ms && c < a.target_ms);
  if (scores < 1000000)
    fmt::print("(fewer than one million score rows: the target is not checked)\n");
  fmt::print("{}\n", ok ? "PASS" : "FAIL");
  return ok ? 0 : 1;
}
