// Batched sample writes and the read of a run's samples (see sample_rows.h).
#include "storage/sample_rows.h"

#include <fmt/format.h>

#include <map>

#include "plumb/log.h"
#include "plumb/text.h"
#include "storage/lease.h"

namespace plumb {

void WriteJobs(SQLite::Database& db, const std::vector<WriteJob>& batch) {
  SQLite::Statement resp(
      db,
      "INSERT OR REPLACE INTO responses (run_id, item_id, epoch, turn, request, status, "
      "text, finish_reason, prompt_tokens, completion_tokens, latency_ms, attempts, "
      "error_code, error_message, created_at, cached, tool_calls, batched, endpoint) "
      "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)");
  SQLite::Statement score(
      db,
      "INSERT OR REPLACE INTO scores (run_id, item_id, epoch, grader, status, value, "
      "label, details, error) VALUES (?,?,?,?,?,?,?,?,?)");
  // Only a pending sample takes a result: the first result written for a sample is its final
  // one (two workers that both answered it leave one), and it ends the sample's lease.
  SQLite::Statement sample(db,
                           "UPDATE samples SET status=?, worker=NULL WHERE run_id=? AND item_id=? "
                           "AND epoch=? AND status='pending'");
  SQLite::Statement pending(
      db, "SELECT 1 FROM samples WHERE run_id=? AND item_id=? AND epoch=? AND status='pending'");
  SQLite::Statement cache(
      db, "INSERT OR REPLACE INTO cache (key, backend, completion, created_at) VALUES (?,?,?,?)");
  SQLite::Statement plan(db,
                         "INSERT OR IGNORE INTO samples (run_id, item_id, epoch, presentation, "
                         "status, worker) VALUES (?,?,?,?,'pending',?)");
  std::string now = NowIso8601();
  for (const WriteJob& job : batch) {
    if (!job.planned.empty()) {
      for (const PlannedSample& p : job.planned) {
        plan.bind(1, job.run_id);
        plan.bind(2, p.item_id);
        plan.bind(3, p.epoch);
        plan.bind(4, DumpJson(p.presentation));
        if (p.leased) {
          plan.bind(5, storage::SelfOwner());
        } else {
          plan.bind(5);
        }
        plan.exec();
        plan.reset();
      }
      continue;
    }
    if (!job.cache_key.empty()) {
      cache.bind(1, job.cache_key);
      cache.bind(2, job.cache_backend);
      cache.bind(3, job.cache_completion);
      cache.bind(4, now);
      cache.exec();
      cache.reset();
      continue;
    }
    const int64_t run_id = job.run_id;
    const SampleResult& r = job.result;
    SQLite::Statement& check = r.partial ? pending : sample;
    int arg = 1;
    if (!r.partial) check.bind(arg++, r.ok ? "done" : "error");
    check.bind(arg++, run_id);
    check.bind(arg++, r.item_id);
    check.bind(arg, r.epoch);
    const bool open = r.partial ? check.executeStep() : check.exec() > 0;
    check.reset();
    if (!open) continue;  // ended already: another worker's result was first
    for (const auto& rr : r.responses) {
      resp.bind(1, run_id);
      resp.bind(2, rr.item_id);
      resp.bind(3, rr.epoch);
      resp.bind(4, rr.turn);
      resp.bind(5, DumpJson(rr.request));
      resp.bind(6, rr.ok ? "ok" : "error");
      if (rr.ok) {
        resp.bind(7, rr.completion.text);
        resp.bind(8, rr.completion.finish_reason);
        BindOpt(resp, 9, rr.completion.prompt_tokens);
        BindOpt(resp, 10, rr.completion.completion_tokens);
        resp.bind(11, rr.completion.latency_ms);
        resp.bind(13);
        resp.bind(14);
      } else {
        for (int i = 7; i <= 11; ++i) resp.bind(i);
        resp.bind(13, rr.error_code);
        resp.bind(14, Redact(rr.error_message));
      }
      resp.bind(12, rr.completion.attempts);
      resp.bind(15, now);
      resp.bind(16, rr.completion.cached ? 1 : 0);
      if (rr.ok && !rr.completion.tool_calls.empty()) {
        resp.bind(17, DumpJson(ToolCallsToJson(rr.completion.tool_calls)));
      } else {
        resp.bind(17);
      }
      resp.bind(18, rr.completion.batched ? 1 : 0);
      if (rr.completion.endpoint.empty()) {
        resp.bind(19);
      } else {
        resp.bind(19, rr.completion.endpoint);
      }
      resp.exec();
      resp.reset();
    }
    for (const auto& g : r.grades) {
      score.bind(1, run_id);
      score.bind(2, r.item_id);
      score.bind(3, r.epoch);
      score.bind(4, g.grader);
      score.bind(5, std::string(GradeStatusName(g.status)));
      BindOpt(score, 6, g.value);
      score.bind(7, g.label);
      score.bind(8, DumpJson(g.details));
      score.bind(9, Redact(g.error));
      score.exec();
      score.reset();
    }
  }
}

namespace {

Grade GradeFromRow(SQLite::Statement& g, int first) {
  Grade grade;
  grade.grader = g.getColumn(first).getString();
  grade.status = GradeStatusFromName(g.getColumn(first + 1).getString());
  grade.value = OptDouble(g.getColumn(first + 2));
  grade.label = g.getColumn(first + 3).getString();
  grade.details = ParseStored(g.getColumn(first + 4).getString());
  grade.error = g.getColumn(first + 5).getString();
  return grade;
}

}  // namespace

ResponseRecord ResponseFromRow(SQLite::Statement& r) {
  ResponseRecord rr;
  rr.item_id = r.getColumn(0).getString();
  rr.epoch = r.getColumn(1).getInt();
  rr.turn = r.getColumn(2).getInt();
  rr.request = ParseStored(r.getColumn(3).getString());
  rr.ok = r.getColumn(4).getString() == "ok";
  rr.completion.text = r.getColumn(5).isNull() ? "" : r.getColumn(5).getString();
  rr.completion.finish_reason = r.getColumn(6).isNull() ? "" : r.getColumn(6).getString();
  rr.completion.prompt_tokens = OptInt64(r.getColumn(7));
  rr.completion.completion_tokens = OptInt64(r.getColumn(8));
  rr.completion.latency_ms = r.getColumn(9).isNull() ? 0 : r.getColumn(9).getDouble();
  rr.completion.attempts = r.getColumn(10).getInt();
  rr.error_code = r.getColumn(11).isNull() ? "" : r.getColumn(11).getString();
  rr.error_message = r.getColumn(12).isNull() ? "" : r.getColumn(12).getString();
  rr.completion.cached = r.getColumn(13).getInt() != 0;
  if (!r.getColumn(14).isNull()) {
    rr.completion.tool_calls = ToolCallsFromJson(ParseStored(r.getColumn(14).getString()));
  }
  rr.completion.batched = r.getColumn(15).getInt() != 0;
  if (!r.getColumn(16).isNull()) rr.completion.endpoint = r.getColumn(16).getString();
  return rr;
}

std::string ResponseColumns(int schema) {
  return std::string(
             "item_id, epoch, turn, request, status, text, finish_reason, prompt_tokens, "
             "completion_tokens, latency_ms, attempts, error_code, error_message, cached, ") +
         (schema >= 4 ? "tool_calls, " : "NULL, ") + (schema >= 5 ? "batched, endpoint" : "0, NULL");
}

namespace {
constexpr const char* kGradeColumns =
    "item_id, epoch, grader, status, value, label, details, error";
}  // namespace

std::vector<SampleRecord> ReadSamples(SQLite::Database& db, int schema, int64_t run_id,
                                      bool with_responses, int64_t offset, int64_t limit) {
  std::vector<SampleRecord> out;
  std::map<std::pair<std::string, int>, size_t> index;
  SQLite::Statement q(db,
                      "SELECT item_id, epoch, presentation, status FROM samples WHERE run_id=? "
                      "ORDER BY epoch, item_id LIMIT ? OFFSET ?");
  q.bind(1, run_id);
  q.bind(2, limit);
  q.bind(3, offset);
  while (q.executeStep()) {
    SampleRecord s;
    s.item_id = q.getColumn(0).getString();
    s.epoch = q.getColumn(1).getInt();
    s.presentation = ParseStored(q.getColumn(2).getString());
    s.status = q.getColumn(3).getString();
    index[{s.item_id, s.epoch}] = out.size();
    out.push_back(std::move(s));
  }
  if (limit >= 0) {
    // A page: each sample's rows by key, rather than every row of a run that may be huge.
    SQLite::Statement g(db, fmt::format("SELECT {} FROM scores WHERE run_id=? AND item_id=? AND "
                                        "epoch=?",
                                        kGradeColumns));
    SQLite::Statement r(db, fmt::format("SELECT {} FROM responses WHERE run_id=? AND item_id=? "
                                        "AND epoch=? ORDER BY turn",
                                        ResponseColumns(schema)));
    for (auto& s : out) {
      g.bind(1, run_id);
      g.bind(2, s.item_id);
      g.bind(3, s.epoch);
      while (g.executeStep()) s.grades.push_back(GradeFromRow(g, 2));
      g.reset();
      if (!with_responses) continue;
      r.bind(1, run_id);
      r.bind(2, s.item_id);
      r.bind(3, s.epoch);
      while (r.executeStep()) s.responses.push_back(ResponseFromRow(r));
      r.reset();
    }
    return out;
  }
  SQLite::Statement g(db, fmt::format("SELECT {} FROM scores WHERE run_id=?", kGradeColumns));
  g.bind(1, run_id);
  while (g.executeStep()) {
    auto it = index.find({g.getColumn(0).getString(), g.getColumn(1).getInt()});
    if (it == index.end()) continue;
    out[it->second].grades.push_back(GradeFromRow(g, 2));
  }
  if (!with_responses) return out;
  SQLite::Statement r(db, fmt::format("SELECT {} FROM responses WHERE run_id=? ORDER BY turn",
                                      ResponseColumns(schema)));
  r.bind(1, run_id);
  while (r.executeStep()) {
    auto it = index.find({r.getColumn(0).getString(), r.getColumn(1).getInt()});
    if (it == index.end()) continue;
    out[it->second].responses.push_back(ResponseFromRow(r));
  }
  return out;
}

void ScanSampleRows(SQLite::Database& db, int schema, int64_t run_id, const SampleScan& what,
                    const std::function<bool(SampleRecord&&)>& visit) {
  // A merge of three scans in primary-key order (item id, epoch): constant memory however many
  // samples the run has.
  // A page starts after a key: every statement starts there too.
  const char* after = what.after ? " AND (item_id, epoch) > (?, ?)" : "";
  SQLite::Statement q(db, fmt::format("SELECT item_id, epoch, presentation, status FROM samples "
                                      "WHERE run_id=?{}{} ORDER BY item_id, epoch LIMIT ?",
                                      after, what.status.empty() ? "" : " AND status=?"));
  SQLite::Statement g(db, fmt::format("SELECT {} FROM scores WHERE run_id=?{} ORDER BY item_id, "
                                      "epoch",
                                      kGradeColumns, after));
  SQLite::Statement r(db, fmt::format("SELECT {} FROM responses WHERE run_id=?{} ORDER BY item_id, "
                                      "epoch, turn",
                                      ResponseColumns(schema), after));
  for (SQLite::Statement* st : {&q, &g, &r}) {
    st->bind(1, run_id);
    if (what.after) {
      st->bind(2, what.after->first);
      st->bind(3, what.after->second);
    }
  }
  int next = what.after ? 4 : 2;
  if (!what.status.empty()) q.bind(next++, what.status);
  q.bind(next, what.limit);
  bool g_row = what.grades && g.executeStep();
  bool r_row = what.responses && r.executeStep();
  // -1, 0, 1 as the row's (item id, epoch) is before, at or after the sample's.
  auto order = [](SQLite::Statement& st, const SampleRecord& s) {
    int c = st.getColumn(0).getString().compare(s.item_id);
    if (c != 0) return c < 0 ? -1 : 1;
    int e = st.getColumn(1).getInt();
    return e < s.epoch ? -1 : e > s.epoch ? 1 : 0;
  };
  while (q.executeStep()) {
    SampleRecord s;
    s.item_id = q.getColumn(0).getString();
    s.epoch = q.getColumn(1).getInt();
    s.presentation = ParseStored(q.getColumn(2).getString());
    s.status = q.getColumn(3).getString();
    while (g_row && order(g, s) < 0) g_row = g.executeStep();
    while (g_row && order(g, s) == 0) {
      s.grades.push_back(GradeFromRow(g, 2));
      g_row = g.executeStep();
    }
    while (r_row && order(r, s) < 0) r_row = r.executeStep();
    while (r_row && order(r, s) == 0) {
      s.responses.push_back(ResponseFromRow(r));
      r_row = r.executeStep();
    }
    if (!visit(std::move(s))) return;
  }
}

}  // namespace plumb
