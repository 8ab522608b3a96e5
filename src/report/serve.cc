// plumb serve: the report and leaderboard live from the results database, and a read-only JSON
// API (docs/serve.md), on cpp-httplib.
#include <fmt/format.h>
#include <httplib.h>

#include <chrono>
#include <map>
#include <thread>

#include "plumb/log.h"
#include "plumb/report.h"
#include "report/html.h"

namespace plumb {
namespace {

constexpr int kMaxPage = 1000;

void SendJson(httplib::Response& res, const Json& body, int status = 200) {
  res.status = status;
  res.set_content(DumpJson(body, 2) + "\n", "application/json; charset=utf-8");
}

void SendError(httplib::Response& res, const Status& s) {
  int code = s.code() == StatusCode::kNotFound          ? 404
             : s.code() == StatusCode::kInvalidArgument ? 400
                                                        : 500;
  SendJson(res, Json{{"error", s.message()}}, code);
}

void SendHtml(httplib::Response& res, const Result<std::string>& page) {
  if (!page) {
    res.status = page.error().code() == StatusCode::kNotFound ? 404 : 500;
    res.set_content(html::Page("plumb: error", "<p class=\"error\">" +
                                                   html::Escape(page.error().message()) + "</p>"),
                    "text/html; charset=utf-8");
    return;
  }
  res.set_content(*page, "text/html; charset=utf-8");
}

// A non-negative integer query parameter, or `fallback`; nullopt when malformed.
std::optional<int64_t> IntParam(const httplib::Request& req, const char* name, int64_t fallback) {
  if (!req.has_param(name)) return fallback;
  std::string v = req.get_param_value(name);
  if (v.empty() || v.size() > 12 || v.find_first_not_of("0123456789") != std::string::npos)
    return std::nullopt;
  return std::stoll(v);
}

// A run as `plumb show --format json` has it, plus its primary metric over the whole suite.
Json RunJson(const Store& store, const RunRecord& r) {
  Json j = RunToJson(r);
  j["primary"] = nullptr;
  if (auto metrics = store.GetMetrics(r.id)) {
    for (const auto& m : *metrics) {
      if (m.name == r.primary_metric && m.category.empty()) j["primary"] = MetricToJson(m);
    }
  }
  return j;
}

// The samples of a run, a page at a time.
Result<Json> ItemsJson(const Store& store, int64_t run_id, int64_t offset, int64_t limit) {
  PLUMB_ASSIGN_OR_RETURN(RunRecord run, store.GetRun(run_id));
  PLUMB_ASSIGN_OR_RETURN(auto items, store.GetItems(run_id));
  PLUMB_ASSIGN_OR_RETURN(SampleCounts counts, store.CountSamples(run_id));
  // Only the page is read, however large the run.
  PLUMB_ASSIGN_OR_RETURN(auto samples,
                         store.GetSamples(run_id, /*with_responses=*/true, offset, limit));
  std::map<std::string, std::string> category;
  for (const auto& i : items) category[i.id] = i.category;
  Json page = Json::array();
  for (const SampleRecord& s : samples) {
    Json responses = Json::array();
    for (const auto& r : s.responses) {
      Json rj = {{"turn", r.turn}, {"request", r.request}, {"ok", r.ok}};
      if (r.ok) {
        rj["text"] = Redact(r.completion.text);
        if (!r.completion.tool_calls.empty()) {
          Json calls = Json::array();
          for (const auto& c : r.completion.tool_calls)
            calls.push_back({{"id", c.id}, {"name", c.name}, {"arguments", Redact(c.arguments)}});
          rj["tool_calls"] = std::move(calls);
        }
        rj["finish_reason"] = r.completion.finish_reason;
        rj["latency_ms"] = r.completion.latency_ms;
        rj["cached"] = r.completion.cached;
      } else {
        rj["error_code"] = r.error_code;
        rj["error_message"] = Redact(r.error_message);
      }
      responses.push_back(rj);
    }
    Json grades = Json::array();
    for (const auto& g : s.grades) {
      grades.push_back({{"grader", g.grader},
                        {"status", GradeStatusName(g.status)},
                        {"value", g.value ? Json(*g.value) : Json(nullptr)},
                        {"label", g.label},
                        {"details", g.details},
                        {"error", g.error}});
    }
    page.push_back({{"item_id", s.item_id},
                    {"category", category[s.item_id]},
                    {"epoch", s.epoch},
                    {"status", s.status},
                    {"presentation", s.presentation},
                    {"responses", responses},
                    {"grades", grades}});
  }
  return Json{{"run_id", run.id},
              {"total", counts.planned},
              {"offset", offset},
              {"limit", limit},
              {"items", page}};
}

}  // namespace

Status Serve(const Store& store, const ServeOptions& options, const std::atomic<bool>& stop,
             const std::function<void(int port)>& on_listening) {
  httplib::Server server;
  // cpp-httplib's default sets SO_REUSEPORT, which would let a second plumb serve share the port
  // silently; SO_REUSEADDR alone still allows a quick restart.
  server.set_socket_options([](socket_t sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof(yes));
  });
  server.set_default_headers({{"X-Content-Type-Options", "nosniff"},
                              {"Content-Security-Policy", html::ContentSecurityPolicy()},
                              {"Cache-Control", "no-store"}});
  auto report = [&](std::vector<int64_t> runs) {
    ReportOptions r;
    r.items_inline = !runs.empty();  // the index links to each run's page for its items
    r.runs = std::move(runs);
    r.max_items = options.max_items;
    r.baselines = options.baselines;
    r.source = options.source;
    return RenderReport(store, r);
  };
  server.Get("/",
             [&](const httplib::Request&, httplib::Response& res) { SendHtml(res, report({})); });
  server.Get(R"(/runs/(\d{1,12}))", [&](const httplib::Request& req, httplib::Response& res) {
    int64_t id = std::stoll(req.matches[1]);
    auto run = store.GetRun(id);
    SendHtml(res, run ? report({id}) : Result<std::string>(run.error()));
  });
  server.Get("/leaderboard", [&](const httplib::Request&, httplib::Response& res) {
    auto board = BuildLeaderboard(store, LeaderboardQuery{}, options.baselines);
    SendHtml(res, board
                      ? Result<std::string>(html::LeaderboardPage(*board, html::RunLinks::kServed))
                      : Result<std::string>(board.error()));
  });
  server.Get("/api/runs", [&](const httplib::Request& req, httplib::Response& res) {
    auto runs =
        store.ListRuns(RunFilter{req.get_param_value("suite"), req.get_param_value("status")});
    if (!runs) return SendError(res, runs.error());
    Json out = Json::array();
    for (const auto& r : *runs) out.push_back(RunJson(store, r));
    SendJson(res, out);
  });
  server.Get("/api/leaderboard", [&](const httplib::Request& req, httplib::Response& res) {
    LeaderboardQuery q;
    if (req.has_param("suite")) q.suites = {req.get_param_value("suite")};
    q.metric = req.get_param_value("metric");
    std::string direction = req.get_param_value("direction");
    if (!direction.empty() && direction != "higher" && direction != "lower") {
      return SendError(res, InvalidArgument("direction must be 'higher' or 'lower'"));
    }
    if (!direction.empty()) q.higher_is_better = direction == "higher";
    q.all_runs = req.get_param_value("runs") == "all";
    auto board = BuildLeaderboard(store, q, options.baselines);
    if (!board) return SendError(res, board.error());
    SendJson(res, Json::parse(*FormatLeaderboard(*board, "json")));
  });
  server.Get(R"(/api/runs/(\d{1,12}))", [&](const httplib::Request& req, httplib::Response& res) {
    int64_t id = std::stoll(req.matches[1]);
    auto run = store.GetRun(id);
    if (!run) return SendError(res, run.error());
    auto metrics = store.GetMetrics(id);
    if (!metrics) return SendError(res, metrics.error());
    std::vector<BaselineScores> baselines =
        options.baselines ? options.baselines(*run) : std::vector<BaselineScores>();
    SendJson(res, Json::parse(*FormatRun(*run, *metrics, "json", baselines)));
  });
  server.Get(R"(/api/runs/(\d{1,12})/items)",
             [&](const httplib::Request& req, httplib::Response& res) {
               auto offset = IntParam(req, "offset", 0);
               auto limit = IntParam(req, "limit", 100);
               if (!offset || !limit || *limit < 1 || *limit > kMaxPage) {
                 return SendError(
                     res, InvalidArgument(fmt::format(
                              "offset and limit must be whole numbers, limit 1 to {}", kMaxPage)));
               }
               auto page = ItemsJson(store, std::stoll(req.matches[1]), *offset, *limit);
               if (!page) return SendError(res, page.error());
               SendJson(res, *page);
             });
  server.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
    if (res.status == 404 && res.body.empty())
      SendJson(res, Json{{"error", "no such page: " + req.path}}, 404);
  });

  int port = options.port == 0
                 ? server.bind_to_any_port(options.host)
                 : (server.bind_to_port(options.host, options.port) ? options.port : -1);
  if (port <= 0) {
    return Unavailable(
        fmt::format("cannot listen on {}:{} (is the port in use? choose one with --port)",
                    options.host, options.port));
  }
  std::thread listener([&] { server.listen_after_bind(); });
  on_listening(port);
  while (!stop.load()) std::this_thread::sleep_for(std::chrono::milliseconds(100));
  server.stop();
  listener.join();
  return Status();
}

}  // namespace plumb
