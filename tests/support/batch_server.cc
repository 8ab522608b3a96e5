// The loopback fake of the three providers' batch APIs (cpp-httplib). The formats it speaks are
// written down, with their sources, in BATCH_FORMATS.md next to this file.
#include "batch_server.h"

#include <httplib.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <map>
#include <mutex>
#include <optional>
#include <re2/re2.h>
#include <set>
#include <thread>

namespace plumb::testing {
namespace {

using Kind = BatchLine::Kind;

struct Reply {
  int status = 200;
  Json body;
  std::optional<std::string> raw;  // sent instead of `body` (JSONL downloads)
  std::vector<std::pair<std::string, std::string>> headers;
};

// The provider's documented error body. Anthropic's error type and Gemini's status name follow
// from the HTTP status; `param` is OpenAI's.
Reply Error(const std::string& provider, int status, const std::string& message,
            const std::string& param = "") {
  if (provider == "anthropic") {
    const char* type = status == 401   ? "authentication_error"
                       : status == 404 ? "not_found_error"
                                       : "invalid_request_error";
    return {status, Json{{"type", "error"}, {"error", {{"type", type}, {"message", message}}}}};
  }
  if (provider == "gemini") {
    const char* state = status == 403   ? "PERMISSION_DENIED"
                        : status == 404 ? "NOT_FOUND"
                                        : "INVALID_ARGUMENT";
    return {status, Json{{"error", {{"code", status}, {"message", message}, {"status", state}}}}};
  }
  Json error = {{"message", message}, {"type", "invalid_request_error"}, {"code", nullptr}};
  error["param"] = param.empty() ? Json() : Json(param);
  return {status, Json{{"error", error}}};
}

bool StartsWith(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

std::string Rfc3339(int64_t t) {
  std::time_t tt = static_cast<std::time_t>(t);
  std::tm tm{};
  gmtime_r(&tt, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

// JSONL lines; a final newline does not make an extra empty line.
std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> lines;
  for (size_t start = 0; start < text.size();) {
    size_t end = std::min(text.find('\n', start), text.size());
    lines.push_back(text.substr(start, end - start));
    if (!lines.back().empty() && lines.back().back() == '\r') lines.back().pop_back();
    start = end + 1;
  }
  return lines;
}

std::string JoinLines(const std::vector<Json>& lines) {
  std::string out;
  for (const auto& l : lines) out += l.dump() + "\n";
  return out;
}

// Whether every key of `obj` is allowed: the providers reject unknown fields.
bool OnlyKeys(const Json& obj, const std::set<std::string>& allowed) {
  if (!obj.is_object()) return false;
  for (const auto& [k, v] : obj.items()) {
    if (!allowed.count(k)) return false;
  }
  return true;
}

bool IsString(const Json& obj, const char* key) {
  return obj.contains(key) && obj[key].is_string();
}

bool IsObject(const Json& obj, const char* key) {
  return obj.contains(key) && obj[key].is_object();
}

// Gemini's JSON mapping of protobuf accepts both the snake_case and the lowerCamel field name.
const Json* Field(const Json& obj, const char* snake, const char* camel) {
  if (obj.contains(snake)) return &obj[snake];
  return obj.contains(camel) ? &obj[camel] : nullptr;
}

struct Line {
  std::string custom_id;
  Json request;
  Json metadata;  // Gemini inline metadata, echoed back with the response
  BatchLine answer;
  Kind outcome = Kind::kOk;
};

enum class End { kNone, kCompleted, kExpired, kCancelled, kFailed };

struct Batch {
  std::string provider, id, token;
  std::vector<Line> lines;
  int polls = 0;
  bool cancel_requested = false;
  bool finalizing = false;  // OpenAI: the last unfinished poll reports "finalizing"
  End end = End::kNone;
  Json failure;  // set when the input file is invalid: the batch fails at its first poll
  int64_t created = 0;
  std::string input_file, output_file, error_file, responses_file;
  Json metadata;  // OpenAI metadata
  std::string model, display_name;
  int Count(Kind k) const {
    return static_cast<int>(
        std::count_if(lines.begin(), lines.end(), [k](const Line& l) { return l.outcome == k; }));
  }
};

struct StoredFile {
  Json object;  // the provider's File object
  std::string content;
  bool output = false;  // only outputs can be downloaded (both providers refuse inputs)
};

}  // namespace

Json BatchReplyBody(const std::string& provider, const std::string& text) {
  if (provider == "anthropic") {
    Json j = Json::parse(R"({"id":"msg_fake","type":"message","role":"assistant",
        "model":"claude-fake","content":[{"type":"text","text":""}],"stop_reason":"end_turn",
        "stop_sequence":null,"usage":{"input_tokens":10,"output_tokens":3}})");
    j["content"][0]["text"] = text;
    return j;
  }
  if (provider == "gemini") {
    Json j = Json::parse(R"({"candidates":[{"content":{"role":"model","parts":[{"text":""}]},
        "finishReason":"STOP","index":0}],"usageMetadata":{"promptTokenCount":10,
        "candidatesTokenCount":3,"totalTokenCount":13},"modelVersion":"gemini-fake"})");
    j["candidates"][0]["content"]["parts"][0]["text"] = text;
    return j;
  }
  return Json::parse(ChatCompletionBody(text));
}

struct BatchFakeServer::Impl {
  httplib::Server server;
  std::thread thread;
  int port = 0;
  mutable std::mutex mu;
  BatchFakeOptions options;
  std::map<std::string, StoredFile> files;      // "file-…" (OpenAI) and "files/…" (Gemini)
  std::map<std::string, Json> upload_sessions;  // Gemini upload_id -> declared metadata
  std::vector<Batch> batches;
  std::map<std::string, int> creations;
  int uploads = 0, polls = 0, cancels = 0, next_token = 0;
  std::vector<FakeRequest> requests;

  template <typename F>
  auto Locked(F f) const {
    std::lock_guard<std::mutex> lock(mu);
    return f();
  }
  std::string Root() const { return "http://127.0.0.1:" + std::to_string(port); }
  std::string Token() {
    char buf[16];
    std::snprintf(buf, sizeof buf, "fake%06d", ++next_token);
    return buf;
  }
  static int64_t Now() {
    using std::chrono::system_clock;
    return std::chrono::duration_cast<std::chrono::seconds>(system_clock::now().time_since_epoch())
        .count();
  }
  Batch* Find(const std::string& provider, const std::string& id) {
    for (auto& b : batches) {
      if (b.provider == provider && b.id == id) return &b;
    }
    return nullptr;
  }
  // The content of uploaded input file `id`, nullopt when there is none.
  std::optional<std::string> InputFile(const std::string& id) const {
    std::lock_guard<std::mutex> lock(mu);
    auto it = files.find(id);
    if (it == files.end() || it->second.output) return std::nullopt;
    return it->second.content;
  }

  Reply Dispatch(const httplib::Request& req) {
    const std::string& p = req.path;
    if (StartsWith(p, "/v1/messages/batches")) return Anthropic(req);
    if (StartsWith(p, "/v1/")) return OpenAi(req);
    if (StartsWith(p, "/v1beta/") || StartsWith(p, "/upload/v1beta/") ||
        StartsWith(p, "/download/v1beta/")) {
      return Gemini(req);
    }
    return Error("openai", 404, "Invalid URL (" + req.method + " " + p + ")");
  }

  // Answers every line (outside the lock: answer() is test code) and stores the batch.
  Reply Register(Batch batch) {
    BatchFakeOptions opts = Locked([&] { return options; });
    for (auto& line : batch.lines) {
      line.answer = opts.answer ? opts.answer(batch.provider, line.request, line.custom_id)
                                : BatchLine{Kind::kOk, BatchReplyBody(batch.provider, "Answer: A")};
    }
    std::lock_guard<std::mutex> lock(mu);
    batch.token = Token();
    const char* prefix = batch.provider == "openai"      ? "batch_"
                         : batch.provider == "anthropic" ? "msgbatch_"
                                                         : "batches/";
    batch.id = prefix + batch.token;
    batch.created = Now();
    ++creations[batch.provider];
    batches.push_back(std::move(batch));
    return Render(batches.back());
  }

  Reply Render(const Batch& b) {
    if (b.provider == "openai") return {200, OpenAiBatch(b)};
    if (b.provider == "anthropic") return {200, AnthropicBatch(b)};
    return {200, GeminiOperation(b)};
  }

  // A status GET: counts down to the end of the batch.
  Reply Poll(const std::string& provider, const std::string& id) {
    std::lock_guard<std::mutex> lock(mu);
    Batch* b = Find(provider, id);
    if (!b) return Error(provider, 404, "No batch found with id '" + id + "'");
    ++polls;
    ++b->polls;
    if (b->end == End::kNone) {
      if (!b->failure.is_null()) {
        Finish(*b, End::kFailed);
      } else if (b->cancel_requested) {
        Finish(*b, End::kCancelled);
      } else if (b->polls > options.polls_to_finish) {
        Finish(*b, options.expire_batches ? End::kExpired : End::kCompleted);
      } else {
        b->finalizing = b->polls == options.polls_to_finish && b->polls >= 2;
      }
    }
    return Render(*b);
  }

  Reply Cancel(const std::string& provider, const std::string& id) {
    std::lock_guard<std::mutex> lock(mu);
    Batch* b = Find(provider, id);
    if (!b) return Error(provider, 404, "No batch found with id '" + id + "'");
    ++cancels;
    if (b->end != End::kNone) return Error(provider, 400, "Batch " + id + " has already ended");
    b->cancel_requested = true;
    if (provider == "gemini") return {200, Json::object()};  // batches.cancel returns Empty
    return Render(*b);
  }

  // Fixes each line's outcome and writes the output files of the batch. When a batch expires or
  // is cancelled, the first half of its lines (index < n/2) count as already run.
  void Finish(Batch& b, End end) {
    b.end = end;
    size_t n = b.lines.size();
    for (size_t i = 0; i < n; ++i) {
      Line& l = b.lines[i];
      l.outcome = l.answer.kind;
      // Gemini documents that an expired job has no results at all.
      bool unrun = i >= n / 2 || b.provider == "gemini";
      if (end == End::kExpired && unrun) l.outcome = Kind::kExpired;
      if (end == End::kCancelled && i >= n / 2) l.outcome = Kind::kCancelled;
    }
    if (end == End::kFailed) return;
    if (b.provider == "openai") {
      std::vector<Json> out, err;
      for (size_t i = 0; i < n; ++i) {
        (b.lines[i].outcome == Kind::kOk ? out : err).push_back(OpenAiResultLine(b, i));
      }
      // The documented output order need not follow the input order: reverse it, so that a
      // client matching results by position fails.
      std::reverse(out.begin(), out.end());
      if (!out.empty()) b.output_file = StoreOutput(b, "output", JoinLines(out));
      if (!err.empty()) b.error_file = StoreOutput(b, "error", JoinLines(err));
    } else if (b.provider == "gemini" && !b.input_file.empty() && end != End::kExpired) {
      std::vector<Json> out;
      for (const auto& l : b.lines) out.push_back(GeminiResult(l, {{"key", l.custom_id}}));
      b.responses_file = "files/batch-" + b.token;
      files[b.responses_file] = {Json(), JoinLines(out), true};
    }
  }

  std::string StoreOutput(const Batch& b, const std::string& kind, const std::string& content) {
    std::string id = "file-" + Token();
    files[id] = {{{"id", id},
                  {"object", "file"},
                  {"bytes", content.size()},
                  {"created_at", b.created},
                  {"filename", b.id + "_" + kind + ".jsonl"},
                  {"purpose", "batch_output"}},
                 content,
                 true};
    return id;
  }

  // ---- OpenAI: Files + Batches -------------------------------------------------------------

  Reply OpenAi(const httplib::Request& req) {
    if (!StartsWith(req.get_header_value("Authorization"), "Bearer ")) {
      return Error("openai", 401, "You didn't provide an API key (Authorization: Bearer <key>)");
    }
    static const RE2 kFile("/v1/files/([^/]+)(/content)?");
    static const RE2 kBatch("/v1/batches/([^/]+)(/cancel)?");
    const std::string& p = req.path;
    std::string id, tail;
    if (req.method == "POST" && p == "/v1/files") return OpenAiUpload(req);
    if (req.method == "POST" && p == "/v1/batches") return OpenAiCreate(req);
    if (req.method == "GET" && RE2::FullMatch(p, kFile, &id, &tail)) {
      std::lock_guard<std::mutex> lock(mu);
      auto it = files.find(id);
      if (it == files.end()) return Error("openai", 404, "No such File object: " + id);
      if (tail.empty()) return {200, it->second.object};
      if (!it->second.output) {
        return Error("openai", 400, "Not allowed to download files of purpose: batch.");
      }
      return {200, Json(), it->second.content, {{"Content-Type", "application/octet-stream"}}};
    }
    if (RE2::FullMatch(p, kBatch, &id, &tail)) {
      if (req.method == "GET" && tail.empty()) return Poll("openai", id);
      if (req.method == "POST" && !tail.empty()) return Cancel("openai", id);
    }
    return Error("openai", 404, "Invalid URL (" + req.method + " " + p + ")");
  }

  Reply OpenAiUpload(const httplib::Request& req) {
    auto bad = [](const std::string& message, const std::string& param) {
      return Error("openai", 400, message, param);
    };
    if (!req.is_multipart_form_data()) return bad("The body must be multipart/form-data", "");
    if (!req.has_file("purpose")) return bad("Missing required parameter: 'purpose'.", "purpose");
    std::string purpose = req.get_file_value("purpose").content;
    if (purpose != "batch") return bad("The batch fake takes only purpose 'batch'", "purpose");
    if (!req.has_file("file")) return bad("Missing required parameter: 'file'.", "file");
    httplib::MultipartFormData file = req.get_file_value("file");
    const std::string& name = file.filename;
    if (name.size() < 6 || name.compare(name.size() - 6, 6, ".jsonl") != 0) {
      return bad("The batch input must be a .jsonl file, got '" + name + "'", "file");
    }
    std::lock_guard<std::mutex> lock(mu);
    std::string id = "file-" + Token();
    Json object = {{"id", id},
                   {"object", "file"},
                   {"bytes", file.content.size()},
                   {"created_at", Now()},
                   {"filename", name},
                   {"purpose", "batch"}};
    files[id] = {object, file.content, false};
    ++uploads;
    return {200, object};
  }

  Reply OpenAiCreate(const httplib::Request& req) {
    auto bad = [](const std::string& message, const std::string& param) {
      return Error("openai", 400, message, param);
    };
    Json body = Json::parse(req.body, nullptr, false);
    if (!body.is_object()) return bad("We could not parse the JSON body of your request.", "");
    static const std::set<std::string> kKeys = {"input_file_id", "endpoint", "completion_window",
                                                "metadata", "output_expires_after"};
    for (const auto& item : body.items()) {
      if (!kKeys.count(item.key())) {
        return bad("Unrecognized request argument supplied: " + item.key(), item.key());
      }
    }
    for (const char* field : {"input_file_id", "endpoint", "completion_window"}) {
      if (!IsString(body, field)) {
        return bad(std::string("Missing required parameter: '") + field + "'.", field);
      }
    }
    if (body["endpoint"] != "/v1/chat/completions") {
      return bad("The batch fake serves only endpoint '/v1/chat/completions'", "endpoint");
    }
    if (body["completion_window"] != "24h") {
      return bad("Invalid value for 'completion_window': only '24h' is supported",
                 "completion_window");
    }
    Batch b;
    b.provider = "openai";
    b.input_file = body["input_file_id"].get<std::string>();
    b.metadata = body.value("metadata", Json());
    if (!b.metadata.is_null() && !b.metadata.is_object())
      return bad("Invalid 'metadata'", "metadata");
    std::optional<std::string> content = InputFile(b.input_file);
    if (!content) {
      return Error("openai", 404, "No file with id '" + b.input_file + "' and purpose 'batch'",
                   "input_file_id");
    }
    // Documented: the input file is validated after creation; a bad one makes the batch
    // "failed" with the reasons in `errors`.
    Json errors = Json::array();
    std::set<std::string> seen;
    std::vector<std::string> lines = SplitLines(*content);
    for (size_t i = 0; i < lines.size(); ++i) {
      Json line = Json::parse(lines[i], nullptr, false);
      const char* code = nullptr;
      if (!line.is_object()) {
        code = "invalid_json_line";
      } else if (!IsString(line, "custom_id") || line.value("method", "") != "POST" ||
                 !IsString(line, "url") || !IsObject(line, "body")) {
        code = "missing_required_parameter";  // custom_id, method POST, url and body
      } else if (line["url"] != body["endpoint"]) {
        code = "mismatched_endpoint";
      } else if (!seen.insert(line["custom_id"].get<std::string>()).second) {
        code = "duplicate_custom_id";
      } else {
        b.lines.push_back({line["custom_id"].get<std::string>(), line["body"], Json(), {}});
        continue;
      }
      errors.push_back(
          {{"code", code},
           {"message", std::string("Input line ") + std::to_string(i + 1) + ": " + code},
           {"param", nullptr},
           {"line", i + 1}});
    }
    if (lines.empty()) errors.push_back({{"code", "empty_file"}, {"message", "Empty input file"}});
    if (!errors.empty()) {
      b.failure = {{"object", "list"}, {"data", errors}};
      b.lines.clear();
    }
    return Register(std::move(b));
  }

  Json OpenAiResultLine(const Batch& b, size_t i) {
    const Line& l = b.lines[i];
    std::string req_id = b.token + "_" + std::to_string(i);
    Json line = {{"id", "batch_req_" + req_id}, {"custom_id", l.custom_id}};
    if (l.outcome == Kind::kOk || l.outcome == Kind::kError) {
      bool ok = l.outcome == Kind::kOk;
      line["response"] = {
          {"status_code", ok ? 200 : 400},
          {"request_id", "req_" + req_id},
          {"body", ok ? l.answer.body : Error("openai", 400, l.answer.error_message).body}};
      line["error"] = nullptr;
    } else {
      bool expired = l.outcome == Kind::kExpired;
      line["response"] = nullptr;
      line["error"] = {
          {"code", expired ? "batch_expired" : "batch_cancelled"},
          {"message", expired ? "This request could not be executed before the completion window "
                                "expired."
                              : "This request was not executed because the batch was cancelled."}};
    }
    return line;
  }

  Json OpenAiBatch(const Batch& b) {
    static const std::map<End, const char*> kStatus = {{End::kCompleted, "completed"},
                                                       {End::kExpired, "expired"},
                                                       {End::kCancelled, "cancelled"},
                                                       {End::kFailed, "failed"}};
    bool ended = b.end != End::kNone;
    std::string status = ended                ? kStatus.at(b.end)
                         : b.cancel_requested ? "cancelling"
                         : b.polls == 0       ? "validating"
                         : b.finalizing       ? "finalizing"
                                              : "in_progress";
    auto at = [&](bool when) { return when ? Json(b.created) : Json(); };
    auto id_or_null = [](const std::string& id) { return id.empty() ? Json() : Json(id); };
    int total = static_cast<int>(b.lines.size());
    int completed = ended ? b.Count(Kind::kOk) : 0;
    return {
        {"id", b.id},
        {"object", "batch"},
        {"endpoint", "/v1/chat/completions"},
        {"errors", b.end == End::kFailed ? b.failure : Json()},
        {"input_file_id", b.input_file},
        {"completion_window", "24h"},
        {"status", status},
        {"output_file_id", id_or_null(b.output_file)},
        {"error_file_id", id_or_null(b.error_file)},
        {"created_at", b.created},
        {"in_progress_at", at(b.polls > 0 && b.end != End::kFailed)},
        {"expires_at", b.created + 24 * 3600},
        {"finalizing_at", at(b.finalizing || b.end == End::kCompleted)},
        {"completed_at", at(b.end == End::kCompleted)},
        {"failed_at", at(b.end == End::kFailed)},
        {"expired_at", at(b.end == End::kExpired)},
        {"cancelling_at", at(b.cancel_requested)},
        {"cancelled_at", at(b.end == End::kCancelled)},
        {"request_counts",
         {{"total", total}, {"completed", completed}, {"failed", ended ? total - completed : 0}}},
        {"metadata", b.metadata}};
  }

  // ---- Anthropic: Message Batches ----------------------------------------------------------

  Reply Anthropic(const httplib::Request& req) {
    if (req.get_header_value("x-api-key").empty()) {
      return Error("anthropic", 401, "x-api-key header is required");
    }
    if (req.get_header_value("anthropic-version").empty()) {
      return Error("anthropic", 400, "anthropic-version: header is required");
    }
    static const RE2 kBatch("/v1/messages/batches/([^/]+)(/cancel|/results)?");
    const std::string& p = req.path;
    std::string id, tail;
    if (req.method == "POST" && p == "/v1/messages/batches") return AnthropicCreate(req);
    if (RE2::FullMatch(p, kBatch, &id, &tail)) {
      if (req.method == "GET" && tail.empty()) return Poll("anthropic", id);
      if (req.method == "POST" && tail == "/cancel") return Cancel("anthropic", id);
      if (req.method == "GET" && tail == "/results") return AnthropicResults(id);
    }
    return Error("anthropic", 404, "Not found: " + req.method + " " + p);
  }

  Reply AnthropicCreate(const httplib::Request& req) {
    auto bad = [](const std::string& message) { return Error("anthropic", 400, message); };
    Json body = Json::parse(req.body, nullptr, false);
    if (!body.is_object()) return bad("The request body is not valid JSON");
    if (!OnlyKeys(body, {"requests"})) return bad("Only the field requests is permitted");
    if (!body.contains("requests") || !body["requests"].is_array() || body["requests"].empty()) {
      return bad("requests: Field required (a non-empty list)");
    }
    static const RE2 kId("[a-zA-Z0-9_-]{1,64}");
    Batch b;
    b.provider = "anthropic";
    std::set<std::string> seen;
    for (size_t i = 0; i < body["requests"].size(); ++i) {
      const Json& r = body["requests"][i];
      std::string at = "requests." + std::to_string(i);
      if (!OnlyKeys(r, {"custom_id", "params"}) || !IsObject(r, "params")) {
        return bad(at + ": must be {custom_id, params}");
      }
      if (!IsString(r, "custom_id") || !RE2::FullMatch(r["custom_id"].get<std::string>(), kId)) {
        return bad(at + ".custom_id: String should match pattern '^[a-zA-Z0-9_-]{1,64}$'");
      }
      if (!seen.insert(r["custom_id"].get<std::string>()).second) {
        return bad(at + ".custom_id: duplicate " + r["custom_id"].dump());
      }
      b.lines.push_back({r["custom_id"].get<std::string>(), r["params"], Json(), {}});
    }
    return Register(std::move(b));
  }

  Reply AnthropicResults(const std::string& id) {
    std::lock_guard<std::mutex> lock(mu);
    Batch* b = Find("anthropic", id);
    if (!b) return Error("anthropic", 404, "No batch found with id '" + id + "'");
    if (b->end == End::kNone) return Error("anthropic", 400, "Batch " + id + " has not ended");
    std::vector<Json> out;
    for (const auto& l : b->lines) {
      Json result;
      if (l.outcome == Kind::kOk) {
        result = {{"type", "succeeded"}, {"message", l.answer.body}};
      } else if (l.outcome == Kind::kError) {
        Json error = Error("anthropic", 400, l.answer.error_message).body;
        error["request_id"] = "req_" + b->token;
        result = {{"type", "errored"}, {"error", error}};
      } else {
        result = {{"type", l.outcome == Kind::kExpired ? "expired" : "canceled"}};
      }
      out.push_back({{"custom_id", l.custom_id}, {"result", result}});
    }
    std::reverse(out.begin(), out.end());  // documented: not in request order
    return {200, Json(), JoinLines(out), {{"Content-Type", "application/binary"}}};
  }

  Json AnthropicBatch(const Batch& b) {
    bool ended = b.end != End::kNone;
    auto count = [&](Kind k) { return ended ? b.Count(k) : 0; };
    auto time_or_null = [&](bool when) { return when ? Json(Rfc3339(b.created)) : Json(); };
    std::string results = Root() + "/v1/messages/batches/" + b.id + "/results";
    return {{"id", b.id},
            {"type", "message_batch"},
            {"processing_status", ended                ? "ended"
                                  : b.cancel_requested ? "canceling"
                                                       : "in_progress"},
            {"request_counts",
             {{"processing", ended ? 0 : static_cast<int>(b.lines.size())},
              {"succeeded", count(Kind::kOk)},
              {"errored", count(Kind::kError)},
              {"canceled", count(Kind::kCancelled)},
              {"expired", count(Kind::kExpired)}}},
            {"ended_at", time_or_null(ended)},
            {"created_at", Rfc3339(b.created)},
            {"expires_at", Rfc3339(b.created + 24 * 3600)},
            {"archived_at", nullptr},
            {"cancel_initiated_at", time_or_null(b.cancel_requested)},
            {"results_url", ended ? Json(results) : Json()}};
  }

  // ---- Gemini: Batch Mode and the Files API ------------------------------------------------

  Reply Gemini(const httplib::Request& req) {
    const std::string& p = req.path;
    bool upload_session = p == "/upload/v1beta/files" && req.has_param("upload_id");
    if (!upload_session && req.get_header_value("x-goog-api-key").empty() &&
        !req.has_param("key")) {
      return Error("gemini", 403,
                   "Method doesn't allow unregistered callers (callers without established "
                   "identity). Please use API Key or other form of API consumer identity.");
    }
    static const RE2 kCreate("/v1beta/models/([^/:]+):batchGenerateContent");
    static const RE2 kBatch("/v1beta/batches/([^/:]+)(:cancel)?");
    static const RE2 kDownload("/download/v1beta/(files/[^/:]+):download");
    std::string id, tail;
    if (req.method == "POST" && upload_session) return GeminiFinishUpload(req);
    if (req.method == "POST" && p == "/upload/v1beta/files") return GeminiStartUpload(req);
    if (req.method == "POST" && RE2::FullMatch(p, kCreate, &id)) return GeminiCreate(req, id);
    if (RE2::FullMatch(p, kBatch, &id, &tail)) {
      if (req.method == "GET" && tail.empty()) return Poll("gemini", "batches/" + id);
      if (req.method == "POST" && !tail.empty()) return Cancel("gemini", "batches/" + id);
    }
    if (req.method == "GET" && RE2::FullMatch(p, kDownload, &id)) {
      if (req.get_param_value("alt") != "media") {
        return Error("gemini", 400, "Downloads need the query parameter alt=media");
      }
      std::lock_guard<std::mutex> lock(mu);
      auto it = files.find(id);
      if (it == files.end()) return Error("gemini", 404, "File " + id + " not found");
      if (!it->second.output) return Error("gemini", 400, "Only generated files can be downloaded");
      return {200, Json(), it->second.content, {{"Content-Type", "application/jsonl"}}};
    }
    return Error("gemini", 404, "Unknown method: " + req.method + " " + p);
  }

  Reply GeminiStartUpload(const httplib::Request& req) {
    auto bad = [](const std::string& message) { return Error("gemini", 400, message); };
    if (req.get_header_value("X-Goog-Upload-Protocol") != "resumable" ||
        req.get_header_value("X-Goog-Upload-Command") != "start") {
      return bad("Expected X-Goog-Upload-Protocol: resumable and X-Goog-Upload-Command: start");
    }
    std::string length = req.get_header_value("X-Goog-Upload-Header-Content-Length");
    if (length.empty() || length.find_first_not_of("0123456789") != std::string::npos) {
      return bad("X-Goog-Upload-Header-Content-Length is required");
    }
    Json body = req.body.empty() ? Json::object() : Json::parse(req.body, nullptr, false);
    if (!OnlyKeys(body, {"file"}) || (body.contains("file") && !body["file"].is_object())) {
      return bad("Invalid JSON payload: expected {\"file\": {\"display_name\": ...}}");
    }
    Json file = body.value("file", Json::object());
    const Json* display = Field(file, "display_name", "displayName");
    std::string type = req.get_header_value("X-Goog-Upload-Header-Content-Type");
    std::lock_guard<std::mutex> lock(mu);
    std::string upload_id = Token();
    upload_sessions[upload_id] = {{"length", std::stoull(length)},
                                  {"type", type.empty() ? "application/octet-stream" : type},
                                  {"display_name", display ? *display : Json("")}};
    std::string url =
        Root() + "/upload/v1beta/files?upload_id=" + upload_id + "&upload_protocol=resumable";
    return {200,
            Json::object(),
            std::nullopt,
            {{"X-Goog-Upload-URL", url}, {"X-Goog-Upload-Status", "active"}}};
  }

  Reply GeminiFinishUpload(const httplib::Request& req) {
    std::string command = req.get_header_value("X-Goog-Upload-Command");
    command.erase(std::remove(command.begin(), command.end(), ' '), command.end());
    if (command != "upload,finalize" || req.get_header_value("X-Goog-Upload-Offset") != "0") {
      return Error("gemini", 400,
                   "Expected X-Goog-Upload-Command: upload, finalize and X-Goog-Upload-Offset: 0");
    }
    std::lock_guard<std::mutex> lock(mu);
    auto it = upload_sessions.find(req.get_param_value("upload_id"));
    if (it == upload_sessions.end()) return Error("gemini", 404, "Unknown upload session");
    Json session = it->second;
    if (session["length"].get<size_t>() != req.body.size()) {
      return Error("gemini", 400,
                   "Uploaded " + std::to_string(req.body.size()) + " bytes, declared " +
                       session["length"].dump());
    }
    upload_sessions.erase(it);
    std::string name = "files/" + Token(), now = Rfc3339(Now());
    Json object = {{"name", name},
                   {"displayName", session["display_name"]},
                   {"mimeType", session["type"]},
                   {"sizeBytes", std::to_string(req.body.size())},
                   {"createTime", now},
                   {"updateTime", now},
                   {"expirationTime", Rfc3339(Now() + 48 * 3600)},
                   {"uri", Root() + "/v1beta/" + name},
                   {"state", "ACTIVE"},
                   {"source", "UPLOADED"}};
    files[name] = {object, req.body, false};
    ++uploads;
    return {200, Json{{"file", object}}, std::nullopt, {{"X-Goog-Upload-Status", "final"}}};
  }

  Reply GeminiCreate(const httplib::Request& req, const std::string& model) {
    auto bad = [](const std::string& message) { return Error("gemini", 400, message); };
    Json body = Json::parse(req.body, nullptr, false);
    if (!OnlyKeys(body, {"batch"}) || !IsObject(body, "batch")) {
      return bad("Invalid JSON payload received: expected {\"batch\": {...}}");
    }
    const Json& batch = body["batch"];
    if (!OnlyKeys(batch, {"display_name", "displayName", "input_config", "inputConfig", "priority",
                          "model"})) {
      return bad("Invalid JSON payload received. Unknown name at 'batch'");
    }
    const Json* display = Field(batch, "display_name", "displayName");
    if (!display || !display->is_string() || display->get<std::string>().empty()) {
      return bad("batch.display_name is required");
    }
    const Json* input = Field(batch, "input_config", "inputConfig");
    if (!input || !OnlyKeys(*input, {"requests", "file_name", "fileName"})) {
      return bad("batch.input_config is required and takes requests or file_name");
    }
    const Json* file_name = Field(*input, "file_name", "fileName");
    if (input->contains("requests") == (file_name != nullptr)) {
      return bad("batch.input_config needs exactly one of requests and file_name");
    }
    Batch b;
    b.provider = "gemini";
    b.model = "models/" + model;
    b.display_name = display->get<std::string>();
    std::set<std::string> seen;
    if (!file_name) {
      const Json& container = (*input)["requests"];
      if (!OnlyKeys(container, {"requests"}) || !container.contains("requests") ||
          !container["requests"].is_array() || container["requests"].empty()) {
        return bad("batch.input_config.requests.requests must be a non-empty list");
      }
      for (const Json& r : container["requests"]) {
        std::string at =
            "batch.input_config.requests.requests[" + std::to_string(b.lines.size()) + "]";
        if (!OnlyKeys(r, {"request", "metadata"}) || !IsObject(r, "request") ||
            (r.contains("metadata") && !r["metadata"].is_object())) {
          return bad(at + " must be {request: GenerateContentRequest, metadata?: object}");
        }
        Json metadata = r.value("metadata", Json());
        std::string key = IsString(metadata, "key") ? metadata["key"].get<std::string>() : "";
        if (!key.empty() && !seen.insert(key).second)
          return bad(at + ".metadata.key is a duplicate");
        b.lines.push_back({key, r["request"], metadata, {}});
      }
      return Register(std::move(b));
    }
    if (!file_name->is_string()) return bad("batch.input_config.file_name must be a string");
    b.input_file = file_name->get<std::string>();
    std::optional<std::string> content = InputFile(b.input_file);
    if (!content) return Error("gemini", 404, "File " + b.input_file + " not found");
    // A bad line fails the job (BATCH_STATE_FAILED, error code 3) rather than the create call.
    std::vector<std::string> lines = SplitLines(*content);
    for (size_t i = 0; i < lines.size() && b.failure.is_null(); ++i) {
      Json line = Json::parse(lines[i], nullptr, false);
      std::string at = b.input_file + ":" + std::to_string(i + 1);
      if (!line.is_object() || !IsString(line, "key") || !IsObject(line, "request")) {
        b.failure = {{"code", 3}, {"message", at + ": each line must be {key, request}"}};
      } else if (!seen.insert(line["key"].get<std::string>()).second) {
        b.failure = {{"code", 3}, {"message", at + ": duplicate key"}};
      } else {
        b.lines.push_back({line["key"].get<std::string>(), line["request"], Json(), {}});
      }
    }
    if (lines.empty()) b.failure = {{"code", 3}, {"message", b.input_file + ": empty file"}};
    if (!b.failure.is_null()) b.lines.clear();
    return Register(std::move(b));
  }

  // `entry` with the line's `response`, or its `error`: a google.rpc.Status with a gRPC code.
  static Json GeminiResult(const Line& l, Json entry) {
    if (l.outcome == Kind::kOk) {
      entry["response"] = l.answer.body;
    } else if (l.outcome == Kind::kError) {
      entry["error"] = {{"code", 3}, {"message", l.answer.error_message}};
    } else if (l.outcome == Kind::kExpired) {
      entry["error"] = {{"code", 4}, {"message", "The request expired before it was run."}};
    } else {
      entry["error"] = {{"code", 1}, {"message", "The batch was cancelled before this request."}};
    }
    return entry;
  }

  Json GeminiOperation(const Batch& b) {
    static const std::map<End, const char*> kState = {{End::kNone, "BATCH_STATE_RUNNING"},
                                                      {End::kCompleted, "BATCH_STATE_SUCCEEDED"},
                                                      {End::kExpired, "BATCH_STATE_EXPIRED"},
                                                      {End::kCancelled, "BATCH_STATE_CANCELLED"},
                                                      {End::kFailed, "BATCH_STATE_FAILED"}};
    const std::string type_prefix = "type.googleapis.com/google.ai.generativelanguage.v1main.";
    bool ended = b.end != End::kNone;
    std::string time = Rfc3339(b.created);
    Json meta = {{"@type", type_prefix + "GenerateContentBatch"},
                 {"model", b.model},
                 {"displayName", b.display_name}};
    if (!b.input_file.empty()) meta["inputConfig"] = {{"fileName", b.input_file}};
    meta["createTime"] = time;
    if (ended) meta["endTime"] = time;
    meta["updateTime"] = time;
    // int64 fields are JSON strings, and zero values are left out, as the real service does.
    Json stats = {{"requestCount", std::to_string(b.lines.size())}};
    auto put = [&](const char* name, int n) {
      if (n > 0) stats[name] = std::to_string(n);
    };
    put("successfulRequestCount", ended ? b.Count(Kind::kOk) : 0);
    put("failedRequestCount", ended ? b.Count(Kind::kError) + b.Count(Kind::kCancelled) : 0);
    put("pendingRequestCount", ended ? b.Count(Kind::kExpired) : static_cast<int>(b.lines.size()));
    meta["batchStats"] = stats;
    meta["state"] = b.polls == 0 && !ended ? "BATCH_STATE_PENDING" : kState.at(b.end);
    meta["name"] = b.id;
    Json output = {{"@type", type_prefix + "GenerateContentBatchOutput"}};
    if (b.end == End::kCompleted || b.end == End::kCancelled) {
      if (!b.responses_file.empty()) {
        output["responsesFile"] = b.responses_file;
      } else {
        Json list = Json::array();
        for (const auto& l : b.lines) {
          list.push_back(GeminiResult(
              l, l.metadata.is_null() ? Json::object() : Json{{"metadata", l.metadata}}));
        }
        output["inlinedResponses"] = {{"inlinedResponses", list}};
      }
      meta["output"] = output;
    }
    Json op = {{"name", b.id}, {"metadata", meta}};
    if (!ended) return op;  // `done` is left out while false
    op["done"] = true;
    if (b.end == End::kCompleted) {
      op["response"] = output;
    } else if (b.end == End::kFailed) {
      op["error"] = b.failure;
    } else {
      bool expired = b.end == End::kExpired;
      op["error"] = {{"code", expired ? 4 : 1},
                     {"message", expired ? "The batch expired." : "The batch was cancelled."}};
    }
    return op;
  }
};

BatchFakeServer::BatchFakeServer(BatchFakeOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->options = std::move(options);
  impl_->server.new_task_queue = [] { return new httplib::ThreadPool(8); };
  // Without TCP_NODELAY, Nagle's algorithm and delayed ACKs add ~40 ms to every reply (see
  // fake_server.cc).
  impl_->server.set_socket_options([](int sock) {
    int yes = 1;
    setsockopt(sock, SOL_SOCKET, SO_REUSEADDR, &yes, sizeof yes);
    setsockopt(sock, IPPROTO_TCP, TCP_NODELAY, &yes, sizeof yes);
  });
  auto handle = [this](const httplib::Request& req, httplib::Response& res) {
    const_cast<httplib::Request&>(req).headers.erase("Accept-Encoding");  // no compression
    FakeRequest fr{req.method, req.path, {}, req.body, Json::parse(req.body, nullptr, false)};
    for (const auto& [k, v] : req.headers) {
      std::string key = k;
      for (auto& c : key) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      fr.headers[key] = v;
    }
    if (fr.json.is_discarded()) fr.json = Json();
    int delay_ms = impl_->Locked([&] {
      impl_->requests.push_back(std::move(fr));
      return impl_->options.delay_ms;
    });
    if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
    Reply reply = impl_->Dispatch(req);
    res.status = reply.status;
    std::string type = "application/json";
    for (const auto& [k, v] : reply.headers) {
      if (k == "Content-Type") {
        type = v;
      } else {
        res.set_header(k, v);
      }
    }
    res.set_content(reply.raw ? *reply.raw : reply.body.dump(), type);
  };
  impl_->server.Get(R"(.*)", handle);
  impl_->server.Post(R"(.*)", handle);
  impl_->server.Delete(R"(.*)", handle);
  impl_->port = impl_->server.bind_to_any_port("127.0.0.1");
  impl_->thread = std::thread([this] { impl_->server.listen_after_bind(); });
  while (!impl_->server.is_running()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

BatchFakeServer::~BatchFakeServer() {
  impl_->server.stop();
  impl_->thread.join();
}

int BatchFakeServer::port() const { return impl_->port; }

std::string BatchFakeServer::root() const { return impl_->Root(); }

int BatchFakeServer::creations(const std::string& provider) const {
  return impl_->Locked([&] {
    auto it = impl_->creations.find(provider);
    return it == impl_->creations.end() ? 0 : it->second;
  });
}

int BatchFakeServer::uploads() const {
  return impl_->Locked([&] { return impl_->uploads; });
}

int BatchFakeServer::status_polls() const {
  return impl_->Locked([&] { return impl_->polls; });
}

int BatchFakeServer::cancels() const {
  return impl_->Locked([&] { return impl_->cancels; });
}

std::vector<std::string> BatchFakeServer::batch_ids() const {
  return impl_->Locked([&] {
    std::vector<std::string> ids;
    for (const auto& b : impl_->batches) ids.push_back(b.id);
    return ids;
  });
}

std::vector<std::vector<std::string>> BatchFakeServer::custom_ids_per_batch() const {
  return impl_->Locked([&] {
    std::vector<std::vector<std::string>> out;
    for (const auto& b : impl_->batches) {
      out.emplace_back();
      for (const auto& l : b.lines) out.back().push_back(l.custom_id);
    }
    return out;
  });
}

std::vector<Json> BatchFakeServer::request_bodies_of(const std::string& batch_id) const {
  return impl_->Locked([&] {
    std::vector<Json> out;
    for (const auto& b : impl_->batches) {
      for (const auto& l : b.lines) {
        if (b.id == batch_id) out.push_back(l.request);
      }
    }
    return out;
  });
}

std::vector<std::pair<std::string, std::string>> BatchFakeServer::log() const {
  return impl_->Locked([&] {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& r : impl_->requests) out.emplace_back(r.method, r.path);
    return out;
  });
}

std::vector<FakeRequest> BatchFakeServer::requests() const {
  return impl_->Locked([&] { return impl_->requests; });
}

void BatchFakeServer::set_options(BatchFakeOptions options) {
  impl_->Locked([&] { impl_->options = std::move(options); });
}

}  // namespace plumb::testing
