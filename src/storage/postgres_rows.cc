// Batched upserts and reads of samples, responses and scores in PostgreSQL (postgres_rows.h).
#include "storage/postgres_rows.h"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "plumb/log.h"
#include "plumb/text.h"
#include "storage/lease.h"

namespace plumb::storage {
namespace {

// Rows fetched from a cursor at a time: memory stays bounded however large the run.
constexpr int kFetchRows = 256;

using SampleKey = std::tuple<int64_t, std::string, int>;

constexpr const char* kGradeColumns =
    "item_id, epoch, grader, status, value, label, details, error";
Grade GradeFromRow(const PgResult& g, int row) {
  Grade grade;
  grade.grader = g.Text(row, 2);
  grade.status = GradeStatusFromName(g.Text(row, 3));
  grade.value = g.OptDouble(row, 4);
  grade.label = g.Text(row, 5);
  grade.details = g.JsonAt(row, 6);
  grade.error = g.Text(row, 7);
  return grade;
}

SampleRecord SampleFromRow(const PgResult& q, int row) {
  SampleRecord s;
  s.item_id = q.Text(row, 0);
  s.epoch = q.Int(row, 1);
  s.presentation = q.JsonAt(row, 2);
  s.status = q.Text(row, 3);
  return s;
}

// Reads a cursor a page at a time.
class Cursor {
 public:
  Cursor(PgConn& conn, std::string name) : conn_(conn), name_(std::move(name)) {}
  Status Open(const std::string& query, const PgParams& params) {
    return conn_.Exec("DECLARE " + name_ + " NO SCROLL CURSOR FOR " + query, params).status();
  }
  // Moves to the next row; false at the end.
  Result<bool> Next() {
    if (++row_ < page_.rows()) return true;
    if (done_) return false;
    PLUMB_ASSIGN_OR_RETURN(page_, conn_.Exec(fmt::format("FETCH {} FROM {}", kFetchRows, name_)));
    done_ = page_.rows() < kFetchRows;
    row_ = 0;
    return page_.rows() > 0;
  }
  const PgResult& page() const { return page_; }
  int row() const { return row_; }
  // -1, 0, 1 as the current row's (item id, epoch) is before, at or after the sample's; the
  // same byte order as the columns' COLLATE "C".
  int Order(const SampleRecord& s) const {
    int c = page_.Text(row_, 0).compare(s.item_id);
    if (c != 0) return c < 0 ? -1 : 1;
    int e = page_.Int(row_, 1);
    return e < s.epoch ? -1 : e > s.epoch ? 1 : 0;
  }

 private:
  PgConn& conn_;
  std::string name_;
  PgResult page_;
  int row_ = -1;
  bool done_ = false;
};

}  // namespace

ResponseRecord ResponseFromRow(const PgResult& r, int row) {
  ResponseRecord rr;
  rr.item_id = r.Text(row, 0);
  rr.epoch = r.Int(row, 1);
  rr.turn = r.Int(row, 2);
  rr.request = r.JsonAt(row, 3);
  rr.ok = r.Text(row, 4) == "ok";
  rr.completion.text = r.Text(row, 5);
  rr.completion.finish_reason = r.Text(row, 6);
  rr.completion.prompt_tokens = r.OptInt64(row, 7);
  rr.completion.completion_tokens = r.OptInt64(row, 8);
  rr.completion.latency_ms = r.Double(row, 9);
  rr.completion.attempts = r.Int(row, 10);
  rr.error_code = r.Text(row, 11);
  rr.error_message = r.Text(row, 12);
  rr.completion.cached = r.Bool(row, 13);
  if (!r.IsNull(row, 14)) rr.completion.tool_calls = ToolCallsFromJson(r.JsonAt(row, 14));
  rr.completion.batched = r.Bool(row, 15);
  rr.completion.endpoint = r.Text(row, 16);
  return rr;
}

Status PostgresWriteJobs(PgConn& conn, const std::vector<WriteJob>& batch) {
  // What writing the jobs one by one would leave, by key (std::map: in key order).
  std::map<SampleKey, const PlannedSample*> planned;
  std::map<std::string, const WriteJob*> cache;
  std::map<std::tuple<int64_t, std::string, int, int>, const ResponseRecord*> responses;
  std::map<std::tuple<int64_t, std::string, int, std::string>, const Grade*> scores;
  std::map<SampleKey, bool> statuses;  // ok
  for (const WriteJob& job : batch) {
    if (!job.planned.empty()) {
      for (const PlannedSample& p : job.planned)
        planned.emplace(SampleKey{job.run_id, p.item_id, p.epoch}, &p);  // the first stays
      continue;
    }
    if (!job.cache_key.empty()) {
      cache[job.cache_key] = &job;
      continue;
    }
    const SampleResult& r = job.result;
    if (statuses.count({job.run_id, r.item_id, r.epoch})) continue;  // the first result stays
    for (const auto& rr : r.responses) responses[{job.run_id, rr.item_id, rr.epoch, rr.turn}] = &rr;
    for (const auto& g : r.grades) scores[{job.run_id, r.item_id, r.epoch, g.grader}] = &g;
    if (!r.partial) statuses[{job.run_id, r.item_id, r.epoch}] = r.ok;
  }
  const std::string now = NowIso8601();
  PLUMB_RETURN_IF_ERROR(InsertRows(
      conn, "INSERT INTO samples (run_id, item_id, epoch, presentation, status, worker)",
      "ON CONFLICT DO NOTHING", 6, {nullptr, nullptr, nullptr, "::jsonb"}, planned,
      [](PgParams& p, const auto& e) {
        p.Add(std::get<0>(e.first)).Add(std::get<1>(e.first)).Add(std::get<2>(e.first));
        p.AddJson(e.second->presentation).Add("pending");
        if (e.second->leased)
          p.Add(SelfOwner());
        else
          p.AddNull();
      }));
  // Only pending samples take results: the first result written for a sample is its final one
  // (two workers that both answered it leave one). The rows are locked in key order, so a
  // concurrent writer of the same sample waits here and then finds it ended.
  std::set<SampleKey> touched;
  for (const auto& e : responses)
    touched.insert({std::get<0>(e.first), std::get<1>(e.first), std::get<2>(e.first)});
  for (const auto& e : scores)
    touched.insert({std::get<0>(e.first), std::get<1>(e.first), std::get<2>(e.first)});
  for (const auto& e : statuses) touched.insert(e.first);
  std::set<SampleKey> open;
  PLUMB_RETURN_IF_ERROR(ForEachChunk(
      conn, "SELECT s.run_id, s.item_id, s.epoch FROM samples AS s JOIN (",
      ") AS v (run_id, item_id, epoch) ON s.run_id = v.run_id AND s.item_id = v.item_id AND "
      "s.epoch = v.epoch WHERE s.status = 'pending' ORDER BY s.run_id, s.item_id, s.epoch FOR "
      "UPDATE OF s",
      3, {"::bigint", "::text", "::integer"}, touched,
      [](PgParams& p, const SampleKey& k) {
        p.Add(std::get<0>(k)).Add(std::get<1>(k)).Add(std::get<2>(k));
      },
      [&](const PgResult& r) {
        for (int i = 0; i < r.rows(); ++i) open.insert({r.Int64(i, 0), r.Text(i, 1), r.Int(i, 2)});
      }));
  auto ended = [&](const auto& key) {
    return !open.count({std::get<0>(key), std::get<1>(key), std::get<2>(key)});
  };
  std::erase_if(responses, [&](const auto& e) { return ended(e.first); });
  std::erase_if(scores, [&](const auto& e) { return ended(e.first); });
  std::erase_if(statuses, [&](const auto& e) { return ended(e.first); });
  PLUMB_RETURN_IF_ERROR(InsertRows(
      conn, "INSERT INTO cache (key, backend, completion, created_at)",
      "ON CONFLICT (key) DO UPDATE SET backend = EXCLUDED.backend, completion = "
      "EXCLUDED.completion, created_at = EXCLUDED.created_at",
      4, {nullptr, nullptr, "::jsonb"}, cache, [&](PgParams& p, const auto& e) {
        p.Add(e.first).Add(e.second->cache_backend).AddJsonText(e.second->cache_completion);
        p.Add(now);
      }));
  PLUMB_RETURN_IF_ERROR(InsertRows(
      conn,
      "INSERT INTO responses (run_id, item_id, epoch, turn, request, status, text, "
      "finish_reason, prompt_tokens, completion_tokens, latency_ms, attempts, error_code, "
      "error_message, created_at, cached, tool_calls, batched, endpoint)",
      "ON CONFLICT (run_id, item_id, epoch, turn) DO UPDATE SET request = EXCLUDED.request, "
      "status = EXCLUDED.status, text = EXCLUDED.text, finish_reason = EXCLUDED.finish_reason, "
      "prompt_tokens = EXCLUDED.prompt_tokens, completion_tokens = EXCLUDED.completion_tokens, "
      "latency_ms = EXCLUDED.latency_ms, attempts = EXCLUDED.attempts, error_code = "
      "EXCLUDED.error_code, error_message = EXCLUDED.error_message, created_at = "
      "EXCLUDED.created_at, cached = EXCLUDED.cached, tool_calls = EXCLUDED.tool_calls, batched "
      "= EXCLUDED.batched, endpoint = EXCLUDED.endpoint",
      19,
      {nullptr, nullptr, nullptr, nullptr, "::jsonb", nullptr, nullptr, nullptr, nullptr, nullptr,
       nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, "::jsonb"},
      responses, [&](PgParams& p, const auto& e) {
        const ResponseRecord& rr = *e.second;
        p.Add(std::get<0>(e.first)).Add(rr.item_id).Add(rr.epoch).Add(rr.turn);
        p.AddJson(rr.request).Add(rr.ok ? "ok" : "error");
        if (rr.ok) {
          p.Add(rr.completion.text).Add(rr.completion.finish_reason);
          p.Add(rr.completion.prompt_tokens).Add(rr.completion.completion_tokens);
          p.Add(rr.completion.latency_ms);
        } else {
          p.AddNull().AddNull().AddNull().AddNull().AddNull();
        }
        p.Add(rr.completion.attempts);
        if (rr.ok)
          p.AddNull().AddNull();
        else
          p.Add(rr.error_code).Add(Redact(rr.error_message));
        p.Add(now).Add(rr.completion.cached);
        if (rr.ok && !rr.completion.tool_calls.empty())
          p.AddJson(ToolCallsToJson(rr.completion.tool_calls));
        else
          p.AddNull();
        p.Add(rr.completion.batched);
        if (rr.completion.endpoint.empty())
          p.AddNull();
        else
          p.Add(rr.completion.endpoint);
      }));
  PLUMB_RETURN_IF_ERROR(InsertRows(
      conn,
      "INSERT INTO scores (run_id, item_id, epoch, grader, status, value, label, details, "
      "error)",
      "ON CONFLICT (run_id, item_id, epoch, grader) DO UPDATE SET status = EXCLUDED.status, "
      "value = EXCLUDED.value, label = EXCLUDED.label, details = EXCLUDED.details, error = "
      "EXCLUDED.error",
      9, {nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, nullptr, "::jsonb"}, scores,
      [](PgParams& p, const auto& e) {
        const Grade& g = *e.second;
        p.Add(std::get<0>(e.first)).Add(std::get<1>(e.first)).Add(std::get<2>(e.first));
        p.Add(g.grader).Add(GradeStatusName(g.status)).Add(g.value).Add(g.label);
        p.AddJson(g.details).Add(Redact(g.error));
      }));
  // The VALUES of an UPDATE ... FROM are typed by their casts, not by a target table.
  return InsertRows(
      conn, "UPDATE samples AS s SET status = v.status, worker = NULL FROM (",
      ") AS v (run_id, item_id, epoch, status) WHERE s.run_id = v.run_id AND s.item_id = "
      "v.item_id AND s.epoch = v.epoch",
      4, {"::bigint", "::text", "::integer", "::text"}, statuses, [](PgParams& p, const auto& e) {
        p.Add(std::get<0>(e.first)).Add(std::get<1>(e.first)).Add(std::get<2>(e.first));
        p.Add(e.second ? "done" : "error");
      });
}

Result<std::vector<SampleRecord>> PostgresReadSamples(PgConn& conn, int64_t run_id,
                                                      bool with_responses, int64_t offset,
                                                      int64_t limit) {
  std::vector<SampleRecord> out;
  std::map<std::pair<std::string, int>, size_t> index;
  PgParams params;
  params.Add(run_id).Add(limit >= 0 ? std::optional<int64_t>(limit) : std::nullopt);
  params.Add(std::max<int64_t>(offset, 0));
  // A page reads the rows of its samples only, not those of a run that may be huge.
  const std::string page =
      limit >= 0 ? " AND (item_id, epoch) IN (SELECT item_id, epoch FROM samples WHERE "
                   "run_id = $1 ORDER BY epoch, item_id LIMIT $2 OFFSET $3)"
                 : "";
  PgParams run_only;
  run_only.Add(run_id);
  const PgParams& rows_params = limit >= 0 ? params : run_only;
  Status s = InTransaction(conn, kSnapshot, [&]() -> Status {
    PLUMB_ASSIGN_OR_RETURN(PgResult q, conn.Exec("SELECT item_id, epoch, presentation, status "
                                                 "FROM samples WHERE run_id = $1 ORDER BY "
                                                 "epoch, item_id LIMIT $2 OFFSET $3",
                                                 params));
    for (int i = 0; i < q.rows(); ++i) {
      SampleRecord rec = SampleFromRow(q, i);
      index[{rec.item_id, rec.epoch}] = out.size();
      out.push_back(std::move(rec));
    }
    PLUMB_ASSIGN_OR_RETURN(
        PgResult g,
        conn.Exec(fmt::format("SELECT {} FROM scores WHERE run_id = $1{} ORDER BY item_id, "
                              "epoch, grader",
                              kGradeColumns, page),
                  rows_params));
    for (int i = 0; i < g.rows(); ++i) {
      auto it = index.find({g.Text(i, 0), g.Int(i, 1)});
      if (it != index.end()) out[it->second].grades.push_back(GradeFromRow(g, i));
    }
    if (!with_responses) return Status();
    PLUMB_ASSIGN_OR_RETURN(
        PgResult r,
        conn.Exec(fmt::format("SELECT {} FROM responses WHERE run_id = $1{} ORDER BY item_id, "
                              "epoch, turn",
                              kResponseColumns, page),
                  rows_params));
    for (int i = 0; i < r.rows(); ++i) {
      auto it = index.find({r.Text(i, 0), r.Int(i, 1)});
      if (it != index.end()) out[it->second].responses.push_back(ResponseFromRow(r, i));
    }
    return Status();
  });
  if (!s.ok()) return s;
  return out;
}

Status PostgresScanSamples(PgConn& conn, int64_t run_id, const SampleScan& what,
                           const std::function<bool(SampleRecord&&)>& visit) {
  // A merge of three cursors in key order (item id, epoch): constant memory however many
  // samples the run has. A page starts after a key: every cursor starts there too.
  PgParams keys;
  keys.Add(run_id);
  if (what.after) keys.Add(what.after->first).Add(what.after->second);
  const char* after = what.after ? " AND (item_id, epoch) > ($2, $3)" : "";
  PgParams sample_params = keys;
  int next = what.after ? 4 : 2;
  std::string status_filter;
  if (!what.status.empty()) {
    status_filter = fmt::format(" AND status = ${}", next++);
    sample_params.Add(what.status);
  }
  sample_params.Add(what.limit >= 0 ? std::optional<int64_t>(what.limit) : std::nullopt);
  return InTransaction(conn, kSnapshot, [&]() -> Status {
    Cursor q(conn, "plumb_samples"), g(conn, "plumb_scores"), r(conn, "plumb_responses");
    PLUMB_RETURN_IF_ERROR(q.Open(fmt::format("SELECT item_id, epoch, presentation, status FROM "
                                             "samples WHERE run_id = $1{}{} ORDER BY item_id, "
                                             "epoch LIMIT ${}",
                                             after, status_filter, next),
                                 sample_params));
    bool g_row = false, r_row = false;
    if (what.grades) {
      PLUMB_RETURN_IF_ERROR(g.Open(fmt::format("SELECT {} FROM scores WHERE run_id = $1{} ORDER "
                                               "BY item_id, epoch, grader",
                                               kGradeColumns, after),
                                   keys));
      PLUMB_ASSIGN_OR_RETURN(g_row, g.Next());
    }
    if (what.responses) {
      PLUMB_RETURN_IF_ERROR(r.Open(fmt::format("SELECT {} FROM responses WHERE run_id = $1{} "
                                               "ORDER BY item_id, epoch, turn",
                                               kResponseColumns, after),
                                   keys));
      PLUMB_ASSIGN_OR_RETURN(r_row, r.Next());
    }
    while (true) {
      PLUMB_ASSIGN_OR_RETURN(bool more, q.Next());
      if (!more) return Status();
      SampleRecord s = SampleFromRow(q.page(), q.row());
      while (g_row && g.Order(s) < 0) {
        PLUMB_ASSIGN_OR_RETURN(g_row, g.Next());
      }
      while (g_row && g.Order(s) == 0) {
        s.grades.push_back(GradeFromRow(g.page(), g.row()));
        PLUMB_ASSIGN_OR_RETURN(g_row, g.Next());
      }
      while (r_row && r.Order(s) < 0) {
        PLUMB_ASSIGN_OR_RETURN(r_row, r.Next());
      }
      while (r_row && r.Order(s) == 0) {
        s.responses.push_back(ResponseFromRow(r.page(), r.row()));
        PLUMB_ASSIGN_OR_RETURN(r_row, r.Next());
      }
      if (!visit(std::move(s))) return Status();
    }
  });
}

RunRecord RunFromRow(const PgResult& r, int row) {
  RunRecord run;
  run.id = r.Int64(row, 0);
  run.started_at = r.Text(row, 1);
  run.finished_at = r.Text(row, 2);
  run.status = r.Text(row, 3);
  run.plumb_version = r.Text(row, 4);
  run.git_sha = r.Text(row, 5);
  run.suite_id = r.Text(row, 6);
  run.suite_version = r.Int(row, 7);
  run.suite_hash = r.Text(row, 8);
  run.model_spec = r.Text(row, 9);
  run.backend_id = r.Text(row, 10);
  run.params = r.JsonAt(row, 11);
  run.seed = static_cast<uint64_t>(r.Int64(row, 12));
  run.concurrency = r.Int(row, 13);
  run.epochs = r.Int(row, 14);
  run.limit = r.OptInt64(row, 15);
  run.n_samples = r.Int64(row, 16);
  run.error = r.Text(row, 17);
  run.settings = r.JsonAt(row, 18);
  run.primary_metric = r.Text(row, 19);
  run.higher_is_better = r.Bool(row, 20);
  run.parent_run_id = r.OptInt64(row, 21);
  run.usage = r.JsonAt(row, 22);
  run.owner = r.Text(row, 23);
  run.heartbeat_at = r.Double(row, 24);
  run.uuid = r.Text(row, 25);
  return run;
}

Metric MetricFromRow(const PgResult& r, int row) {
  Metric m;
  m.name = r.Text(row, 0);
  m.category = r.Text(row, 1);
  m.value = r.OptDouble(row, 2);
  m.ci_low = r.OptDouble(row, 3);
  m.ci_high = r.OptDouble(row, 4);
  m.n = r.Int64(row, 5);
  m.k = r.OptInt64(row, 6);
  m.ci_method = r.Text(row, 7);
  m.details = r.JsonAt(row, 8);
  return m;
}

Item ItemFromRow(const PgResult& r, int row) {
  Item item;
  item.id = r.Text(row, 0);
  item.category = r.Text(row, 1);
  item.line = r.Int(row, 2);
  item.fields = r.JsonAt(row, 3);
  item.metadata = r.JsonAt(row, 4);
  item.scored = r.Bool(row, 5);
  return item;
}

BatchRecord BatchFromRow(const PgResult& r, int row) {
  BatchRecord b;
  b.id = r.Int64(row, 0);
  b.run_id = r.Int64(row, 1);
  b.role = r.Text(row, 2);
  b.provider = r.Text(row, 3);
  b.state = r.Text(row, 4);
  b.info = r.JsonAt(row, 5);
  if (!b.info.is_object()) b.info = Json::object();
  Json ids = r.JsonAt(row, 6);
  if (ids.is_array()) {
    for (const auto& id : ids)
      if (id.is_string()) b.custom_ids.push_back(id.get<std::string>());
  }
  b.resubmits = r.Int(row, 7);
  b.created_at = r.Text(row, 8);
  b.updated_at = r.Text(row, 9);
  return b;
}

}  // namespace plumb::storage
