// Proves the batch fake (tests/support/batch_server.h) by driving each provider's whole batch flow
// with a plain HTTP client: upload, create, poll, download, cancel, an errored line and expiry.
#include <gtest/gtest.h>
#include <httplib.h>

#include <chrono>
#include <map>

#include "batch_server.h"

namespace plumb::testing {
namespace {

using Kind = BatchLine::Kind;

const httplib::Headers kOpenAi = {{"Authorization", "Bearer sk-test"}};
const httplib::Headers kAnthropic = {{"x-api-key", "sk-ant-test"},
                                     {"anthropic-version", "2023-06-01"}};
const httplib::Headers kGemini = {{"x-goog-api-key", "gm-test"}};

std::vector<Json> JsonLines(const std::string& text) {
  std::vector<Json> out;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    out.push_back(Json::parse(text.substr(start, end - start)));
    start = end == std::string::npos ? text.size() : end + 1;
  }
  return out;
}

std::map<std::string, Json> ByKey(const std::vector<Json>& lines, const char* key) {
  std::map<std::string, Json> out;
  for (const auto& l : lines) out[l[key].get<std::string>()] = l;
  return out;
}

Json Parse(const httplib::Result& r) {
  EXPECT_TRUE(r) << "no response";
  return r ? Json::parse(r->body, nullptr, false) : Json();
}

// An answer that echoes the request's prompt and fails the line whose id is `failing`.
BatchFakeOptions Echo(const std::string& failing, int polls_to_finish) {
  BatchFakeOptions o;
  o.polls_to_finish = polls_to_finish;
  o.answer = [failing](const std::string& provider, const Json& request, const std::string& id) {
    if (id == failing) return BatchLine{Kind::kError, Json(), "prompt too long"};
    const Json& text = provider == "gemini" ? request["contents"][0]["parts"][0]["text"]
                                            : request["messages"][0]["content"];
    std::string prompt = text.get<std::string>();
    return BatchLine{Kind::kOk, BatchReplyBody(provider, "echo " + prompt)};
  };
  return o;
}

// ---- OpenAI ----------------------------------------------------------------------------------

std::string OpenAiInput(const std::vector<std::string>& ids) {
  std::string out;
  for (const auto& id : ids) {
    Json body = {{"model", "gpt-test"}, {"messages", {{{"role", "user"}, {"content", id}}}}};
    out +=
        Json{{"custom_id", id}, {"method", "POST"}, {"url", "/v1/chat/completions"}, {"body", body}}
            .dump() +
        "\n";
  }
  return out;
}

// Uploads `jsonl` and creates a batch over it; returns the Batch object.
Json OpenAiCreate(httplib::Client& cli, const std::string& jsonl) {
  httplib::MultipartFormDataItems form = {{"purpose", "batch", "", ""},
                                          {"file", jsonl, "input.jsonl", "application/jsonl"}};
  Json file = Parse(cli.Post("/v1/files", kOpenAi, form));
  Json create = {{"input_file_id", file["id"]},
                 {"endpoint", "/v1/chat/completions"},
                 {"completion_window", "24h"},
                 {"metadata", {{"run", "1"}}}};
  return Parse(cli.Post("/v1/batches", kOpenAi, create.dump(), "application/json"));
}

TEST(BatchFake, OpenAiUploadCreatePollDownload) {
  BatchFakeServer server(Echo("b", 2));
  httplib::Client cli("127.0.0.1", server.port());
  std::string input = OpenAiInput({"a", "b", "c"});
  httplib::MultipartFormDataItems form = {{"purpose", "batch", "", ""},
                                          {"file", input, "input.jsonl", "application/jsonl"}};
  Json file = Parse(cli.Post("/v1/files", kOpenAi, form));
  EXPECT_EQ(file["object"], "file");
  EXPECT_EQ(file["purpose"], "batch");
  EXPECT_EQ(file["filename"], "input.jsonl");
  EXPECT_EQ(file["bytes"], input.size());
  ASSERT_EQ(file["id"].get<std::string>().rfind("file-", 0), 0u) << file;

  Json create = {{"input_file_id", file["id"]},
                 {"endpoint", "/v1/chat/completions"},
                 {"completion_window", "24h"}};
  Json batch = Parse(cli.Post("/v1/batches", kOpenAi, create.dump(), "application/json"));
  std::string id = batch["id"];
  EXPECT_EQ(id.rfind("batch_", 0), 0u);
  EXPECT_EQ(batch["object"], "batch");
  EXPECT_EQ(batch["status"], "validating");
  EXPECT_EQ(batch["input_file_id"], file["id"]);
  EXPECT_TRUE(batch["output_file_id"].is_null());
  std::vector<std::string> statuses;
  for (int i = 0; i < 3; ++i) {
    batch = Parse(cli.Get("/v1/batches/" + id, kOpenAi));
    statuses.push_back(batch["status"].get<std::string>());
  }
  EXPECT_EQ(statuses, (std::vector<std::string>{"in_progress", "finalizing", "completed"}));
  EXPECT_EQ(batch["request_counts"], (Json{{"total", 3}, {"completed", 2}, {"failed", 1}}));
  EXPECT_TRUE(batch["completed_at"].is_number());

  auto out =
      cli.Get("/v1/files/" + batch["output_file_id"].get<std::string>() + "/content", kOpenAi);
  ASSERT_EQ(out->status, 200);
  std::vector<Json> lines = JsonLines(out->body);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["custom_id"], "c");  // not in input order, as documented
  Json a = ByKey(lines, "custom_id")["a"];
  EXPECT_EQ(a["id"].get<std::string>().rfind("batch_req_", 0), 0u);
  EXPECT_EQ(a["response"]["status_code"], 200);
  EXPECT_TRUE(a["response"]["request_id"].is_string());
  EXPECT_EQ(a["response"]["body"]["choices"][0]["message"]["content"], "echo a");
  EXPECT_TRUE(a["error"].is_null());
  auto err =
      cli.Get("/v1/files/" + batch["error_file_id"].get<std::string>() + "/content", kOpenAi);
  Json b = JsonLines(err->body).at(0);
  EXPECT_EQ(b["custom_id"], "b");
  EXPECT_EQ(b["response"]["status_code"], 400);
  EXPECT_EQ(b["response"]["body"]["error"]["message"], "prompt too long");
  // Batch input files cannot be downloaded.
  EXPECT_EQ(cli.Get("/v1/files/" + file["id"].get<std::string>() + "/content", kOpenAi)->status,
            400);

  EXPECT_EQ(server.creations("openai"), 1);
  EXPECT_EQ(server.uploads(), 1);
  EXPECT_EQ(server.status_polls(), 3);
  EXPECT_EQ(server.batch_ids(), std::vector<std::string>{id});
  EXPECT_EQ(server.custom_ids_per_batch(),
            (std::vector<std::vector<std::string>>{{"a", "b", "c"}}));
  EXPECT_EQ(server.request_bodies_of(id)[1]["messages"][0]["content"], "b");
  EXPECT_EQ(server.log()[0], (std::pair<std::string, std::string>{"POST", "/v1/files"}));
  EXPECT_EQ(server.requests()[0].headers.at("authorization"), "Bearer sk-test");
}

TEST(BatchFake, OpenAiExpiryAndCancel) {
  BatchFakeOptions options = Echo("", 0);
  options.expire_batches = true;
  BatchFakeServer server(options);
  httplib::Client cli("127.0.0.1", server.port());
  std::string id = OpenAiCreate(cli, OpenAiInput({"a", "b", "c", "d"}))["id"];
  Json batch = Parse(cli.Get("/v1/batches/" + id, kOpenAi));
  EXPECT_EQ(batch["status"], "expired");
  EXPECT_TRUE(batch["expired_at"].is_number());
  EXPECT_EQ(batch["request_counts"], (Json{{"total", 4}, {"completed", 2}, {"failed", 2}}));
  auto out =
      cli.Get("/v1/files/" + batch["output_file_id"].get<std::string>() + "/content", kOpenAi);
  EXPECT_EQ(ByKey(JsonLines(out->body), "custom_id").count("b"), 1u);
  auto err =
      cli.Get("/v1/files/" + batch["error_file_id"].get<std::string>() + "/content", kOpenAi);
  std::map<std::string, Json> expired = ByKey(JsonLines(err->body), "custom_id");
  ASSERT_EQ(expired.size(), 2u);
  EXPECT_TRUE(expired["c"]["response"].is_null());
  EXPECT_EQ(expired["c"]["error"]["code"], "batch_expired");
  EXPECT_EQ(expired["d"]["error"]["message"],
            "This request could not be executed before the completion window expired.");

  server.set_options(Echo("", 5));
  id = OpenAiCreate(cli, OpenAiInput({"a", "b"}))["id"];
  batch = Parse(cli.Post("/v1/batches/" + id + "/cancel", kOpenAi, "", "application/json"));
  EXPECT_EQ(batch["status"], "cancelling");
  EXPECT_TRUE(batch["cancelling_at"].is_number());
  batch = Parse(cli.Get("/v1/batches/" + id, kOpenAi));
  EXPECT_EQ(batch["status"], "cancelled");
  err = cli.Get("/v1/files/" + batch["error_file_id"].get<std::string>() + "/content", kOpenAi);
  EXPECT_EQ(JsonLines(err->body).at(0)["error"]["code"], "batch_cancelled");
  EXPECT_EQ(cli.Post("/v1/batches/" + id + "/cancel", kOpenAi, "", "application/json")->status,
            400);
  EXPECT_EQ(server.cancels(), 2);
}

TEST(BatchFake, OpenAiRejectsBadRequests) {
  BatchFakeServer server(Echo("", 0));
  httplib::Client cli("127.0.0.1", server.port());
  auto no_key = cli.Get("/v1/batches/batch_x");
  EXPECT_EQ(no_key->status, 401);
  EXPECT_EQ(Parse(no_key)["error"]["type"], "invalid_request_error");
  httplib::MultipartFormDataItems no_purpose = {{"file", "{}\n", "in.jsonl", "application/jsonl"}};
  auto r = cli.Post("/v1/files", kOpenAi, no_purpose);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(Parse(r)["error"]["param"], "purpose");
  httplib::MultipartFormDataItems csv = {{"purpose", "batch", "", ""},
                                         {"file", "x", "in.csv", "text/csv"}};
  EXPECT_EQ(cli.Post("/v1/files", kOpenAi, csv)->status, 400);
  EXPECT_EQ(cli.Post("/v1/files", kOpenAi, "{}", "application/json")->status, 400);
  Json create = {{"input_file_id", "file-nope"},
                 {"endpoint", "/v1/chat/completions"},
                 {"completion_window", "24h"}};
  EXPECT_EQ(cli.Post("/v1/batches", kOpenAi, create.dump(), "application/json")->status, 404);
  create["model"] = "gpt-test";
  r = cli.Post("/v1/batches", kOpenAi, create.dump(), "application/json");
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(Parse(r)["error"]["param"], "model");
  EXPECT_EQ(cli.Post("/v1/batches", kOpenAi, "{", "application/json")->status, 400);
  auto missing = cli.Get("/v1/batches/batch_nope", kOpenAi);
  EXPECT_EQ(missing->status, 404);
  EXPECT_TRUE(Parse(missing)["error"]["message"].is_string());
  EXPECT_EQ(server.creations("openai"), 0);

  // Bad input lines are reported the documented way: the batch is created, then fails.
  std::string input = OpenAiInput({"a", "a"}) + "not json\n" +
                      R"({"custom_id":"z","method":"POST","url":"/v1/embeddings","body":{}})"
                      "\n";
  Json batch = OpenAiCreate(cli, input);
  EXPECT_EQ(batch["status"], "validating");
  batch = Parse(cli.Get("/v1/batches/" + batch["id"].get<std::string>(), kOpenAi));
  EXPECT_EQ(batch["status"], "failed");
  Json codes = Json::array();
  for (const auto& e : batch["errors"]["data"])
    codes.push_back(Json::array({e["code"], e["line"]}));
  EXPECT_EQ(codes, Json::parse(R"([["duplicate_custom_id",2],["invalid_json_line",3],
                                   ["mismatched_endpoint",4]])"));
}

// ---- Anthropic -------------------------------------------------------------------------------

Json AnthropicRequests(const std::vector<std::string>& ids) {
  Json requests = Json::array();
  for (const auto& id : ids) {
    Json params = {{"model", "claude-test"},
                   {"max_tokens", 64},
                   {"messages", {{{"role", "user"}, {"content", id}}}}};
    requests.push_back({{"custom_id", id}, {"params", params}});
  }
  return {{"requests", requests}};
}

TEST(BatchFake, AnthropicCreatePollResultsCancelExpire) {
  BatchFakeServer server(Echo("q2", 2));
  httplib::Client cli("127.0.0.1", server.port());
  std::string body = AnthropicRequests({"q1", "q2", "q3"}).dump();
  Json batch = Parse(cli.Post("/v1/messages/batches", kAnthropic, body, "application/json"));
  std::string id = batch["id"];
  EXPECT_EQ(id.rfind("msgbatch_", 0), 0u);
  EXPECT_EQ(batch["type"], "message_batch");
  EXPECT_EQ(batch["processing_status"], "in_progress");
  EXPECT_EQ(batch["request_counts"]["processing"], 3);
  EXPECT_TRUE(batch["results_url"].is_null());
  EXPECT_TRUE(batch["expires_at"].is_string());
  auto early = cli.Get("/v1/messages/batches/" + id + "/results", kAnthropic);
  EXPECT_EQ(early->status, 400);
  EXPECT_EQ(Parse(early)["type"], "error");
  for (int i = 0; i < 2; ++i) {
    batch = Parse(cli.Get("/v1/messages/batches/" + id, kAnthropic));
    EXPECT_EQ(batch["processing_status"], "in_progress");
  }
  batch = Parse(cli.Get("/v1/messages/batches/" + id, kAnthropic));
  EXPECT_EQ(batch["processing_status"], "ended");
  EXPECT_TRUE(batch["ended_at"].is_string());
  EXPECT_EQ(batch["request_counts"], Json::parse(R"({"processing":0,"succeeded":2,"errored":1,
                                                     "canceled":0,"expired":0})"));
  std::string url = batch["results_url"];
  ASSERT_EQ(url, server.root() + "/v1/messages/batches/" + id + "/results");
  auto results = cli.Get(url.substr(server.root().size()), kAnthropic);
  ASSERT_EQ(results->status, 200);
  std::vector<Json> lines = JsonLines(results->body);
  EXPECT_EQ(lines[0]["custom_id"], "q3");  // not in request order, as documented
  std::map<std::string, Json> by_id = ByKey(lines, "custom_id");
  EXPECT_EQ(by_id["q1"]["result"]["type"], "succeeded");
  EXPECT_EQ(by_id["q1"]["result"]["message"]["content"][0]["text"], "echo q1");
  Json error = by_id["q2"]["result"];
  EXPECT_EQ(error["type"], "errored");
  EXPECT_EQ(error["error"]["type"], "error");
  EXPECT_EQ(error["error"]["error"]["type"], "invalid_request_error");
  EXPECT_EQ(error["error"]["error"]["message"], "prompt too long");
  for (const auto& r : server.requests()) {
    EXPECT_EQ(r.headers.at("x-api-key"), "sk-ant-test");
    EXPECT_EQ(r.headers.at("anthropic-version"), "2023-06-01");
  }

  server.set_options(Echo("", 9));
  id = Parse(cli.Post("/v1/messages/batches", kAnthropic, AnthropicRequests({"x", "y"}).dump(),
                      "application/json"))["id"];
  batch =
      Parse(cli.Post("/v1/messages/batches/" + id + "/cancel", kAnthropic, "", "application/json"));
  EXPECT_EQ(batch["processing_status"], "canceling");
  EXPECT_TRUE(batch["cancel_initiated_at"].is_string());
  batch = Parse(cli.Get("/v1/messages/batches/" + id, kAnthropic));
  EXPECT_EQ(batch["processing_status"], "ended");
  EXPECT_EQ(batch["request_counts"]["canceled"], 1);
  by_id = ByKey(JsonLines(cli.Get("/v1/messages/batches/" + id + "/results", kAnthropic)->body),
                "custom_id");
  EXPECT_EQ(by_id["y"]["result"], (Json{{"type", "canceled"}}));

  BatchFakeOptions expire = Echo("", 0);
  expire.expire_batches = true;
  server.set_options(expire);
  id = Parse(cli.Post("/v1/messages/batches", kAnthropic, AnthropicRequests({"x", "y"}).dump(),
                      "application/json"))["id"];
  EXPECT_EQ(Parse(cli.Get("/v1/messages/batches/" + id, kAnthropic))["request_counts"]["expired"],
            1);
  by_id = ByKey(JsonLines(cli.Get("/v1/messages/batches/" + id + "/results", kAnthropic)->body),
                "custom_id");
  EXPECT_EQ(by_id["x"]["result"]["type"], "succeeded");
  EXPECT_EQ(by_id["y"]["result"], (Json{{"type", "expired"}}));
  EXPECT_EQ(server.creations("anthropic"), 3);
  EXPECT_EQ(server.cancels(), 1);
}

TEST(BatchFake, AnthropicRejectsBadRequests) {
  BatchFakeServer server(Echo("", 0));
  httplib::Client cli("127.0.0.1", server.port());
  std::string ok = AnthropicRequests({"a"}).dump();
  auto r = cli.Post("/v1/messages/batches", httplib::Headers{{"anthropic-version", "2023-06-01"}},
                    ok, "application/json");
  EXPECT_EQ(r->status, 401);
  EXPECT_EQ(Parse(r)["error"]["type"], "authentication_error");
  r = cli.Post("/v1/messages/batches", httplib::Headers{{"x-api-key", "k"}}, ok,
               "application/json");
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(Parse(r)["error"]["message"], "anthropic-version: header is required");
  for (const char* bad :
       {R"({"requests":[]})", R"({"requests":[{"custom_id":"has space","params":{}}]})",
        R"({"requests":[{"custom_id":"a"}]})", R"({"requests":[{"custom_id":"a",
                          "params":{}},{"custom_id":"a","params":{}}]})",
        R"({"requests":[],"x":1})"}) {
    r = cli.Post("/v1/messages/batches", kAnthropic, bad, "application/json");
    EXPECT_EQ(r->status, 400) << bad;
    EXPECT_EQ(Parse(r)["error"]["type"], "invalid_request_error") << bad;
  }
  r = cli.Get("/v1/messages/batches/msgbatch_nope", kAnthropic);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(Parse(r)["error"]["type"], "not_found_error");
  EXPECT_EQ(server.creations("anthropic"), 0);
}

// ---- Gemini ----------------------------------------------------------------------------------

Json GeminiRequest(const std::string& text) {
  return {{"contents", {{{"role", "user"}, {"parts", {{{"text", text}}}}}}}};
}

Json GeminiInline(const std::vector<std::string>& keys) {
  Json requests = Json::array();
  for (const auto& k : keys) {
    requests.push_back({{"request", GeminiRequest(k)}, {"metadata", {{"key", k}}}});
  }
  return {
      {"batch",
       {{"display_name", "run-1"}, {"input_config", {{"requests", {{"requests", requests}}}}}}}};
}

std::string GeminiPost(httplib::Client& cli, const std::string& path, const Json& body) {
  auto r = cli.Post(path, kGemini, body.dump(), "application/json");
  return r ? r->body : "";
}

TEST(BatchFake, GeminiInlineCreatePollCancel) {
  BatchFakeServer server(Echo("k2", 1));
  httplib::Client cli("127.0.0.1", server.port());
  const std::string create = "/v1beta/models/gemini-test:batchGenerateContent";
  Json op = Json::parse(GeminiPost(cli, create, GeminiInline({"k1", "k2"})));
  std::string name = op["name"];
  EXPECT_EQ(name.rfind("batches/", 0), 0u);
  EXPECT_EQ(op["metadata"]["@type"],
            "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch");
  EXPECT_EQ(op["metadata"]["state"], "BATCH_STATE_PENDING");
  EXPECT_EQ(op["metadata"]["model"], "models/gemini-test");
  EXPECT_EQ(op["metadata"]["displayName"], "run-1");
  EXPECT_EQ(op["metadata"]["batchStats"],
            (Json{{"requestCount", "2"}, {"pendingRequestCount", "2"}}));
  EXPECT_FALSE(op.contains("done"));
  op = Parse(cli.Get("/v1beta/" + name, kGemini));
  EXPECT_EQ(op["metadata"]["state"], "BATCH_STATE_RUNNING");
  op = Parse(cli.Get("/v1beta/" + name, kGemini));
  EXPECT_EQ(op["metadata"]["state"], "BATCH_STATE_SUCCEEDED");
  EXPECT_EQ(op["done"], true);
  Json inlined = op["response"]["inlinedResponses"]["inlinedResponses"];
  ASSERT_EQ(inlined.size(), 2u);  // in request order, as documented
  EXPECT_EQ(inlined[0]["metadata"]["key"], "k1");
  EXPECT_EQ(inlined[0]["response"]["candidates"][0]["content"]["parts"][0]["text"], "echo k1");
  EXPECT_EQ(inlined[1]["metadata"]["key"], "k2");
  EXPECT_EQ(inlined[1]["error"]["message"], "prompt too long");
  EXPECT_EQ(op["metadata"]["output"], op["response"]);
  EXPECT_EQ(server.request_bodies_of(name)[0], GeminiRequest("k1"));

  server.set_options(Echo("", 9));
  name = Json::parse(GeminiPost(cli, create, GeminiInline({"c1", "c2"})))["name"];
  EXPECT_EQ(GeminiPost(cli, "/v1beta/" + name + ":cancel", Json::object()), "{}");
  op = Parse(cli.Get("/v1beta/" + name, kGemini));
  EXPECT_EQ(op["metadata"]["state"], "BATCH_STATE_CANCELLED");
  EXPECT_EQ(op["done"], true);
  EXPECT_EQ(op["error"]["code"], 1);
  inlined = op["metadata"]["output"]["inlinedResponses"]["inlinedResponses"];
  EXPECT_TRUE(inlined[0].contains("response"));
  EXPECT_EQ(inlined[1]["error"]["code"], 1);
  EXPECT_EQ(server.cancels(), 1);
  EXPECT_EQ(server.creations("gemini"), 2);
}

// Uploads `jsonl` with the Files API's resumable protocol; returns the File resource.
Json GeminiUpload(httplib::Client& cli, const std::string& root, const std::string& jsonl) {
  httplib::Headers start = kGemini;
  start.insert({{"X-Goog-Upload-Protocol", "resumable"},
                {"X-Goog-Upload-Command", "start"},
                {"X-Goog-Upload-Header-Content-Length", std::to_string(jsonl.size())},
                {"X-Goog-Upload-Header-Content-Type", "application/jsonl"}});
  auto r = cli.Post("/upload/v1beta/files", start, R"({"file":{"display_name":"input"}})",
                    "application/json");
  EXPECT_EQ(r->get_header_value("X-Goog-Upload-Status"), "active");
  std::string url = r->get_header_value("X-Goog-Upload-URL");
  EXPECT_EQ(url.rfind(root + "/upload/v1beta/files?upload_id=", 0), 0u) << url;
  httplib::Headers upload = {{"X-Goog-Upload-Command", "upload, finalize"},
                             {"X-Goog-Upload-Offset", "0"}};
  r = cli.Post(url.substr(root.size()), upload, jsonl, "application/jsonl");
  EXPECT_EQ(r->get_header_value("X-Goog-Upload-Status"), "final");
  return Parse(r)["file"];
}

TEST(BatchFake, GeminiFileUploadCreateDownloadExpire) {
  BatchFakeServer server(Echo("f2", 0));
  httplib::Client cli("127.0.0.1", server.port());
  std::string jsonl;
  for (const char* k : {"f1", "f2"})
    jsonl += Json{{"key", k}, {"request", GeminiRequest(k)}}.dump() + "\n";
  Json file = GeminiUpload(cli, server.root(), jsonl);
  std::string file_name = file["name"];
  EXPECT_EQ(file_name.rfind("files/", 0), 0u);
  EXPECT_EQ(file["sizeBytes"], std::to_string(jsonl.size()));
  EXPECT_EQ(file["displayName"], "input");
  EXPECT_EQ(file["mimeType"], "application/jsonl");
  EXPECT_EQ(file["state"], "ACTIVE");
  EXPECT_EQ(server.uploads(), 1);

  Json create = {
      {"batch", {{"display_name", "file-run"}, {"input_config", {{"file_name", file_name}}}}}};
  std::string path = "/v1beta/models/gemini-test:batchGenerateContent";
  Json op = Json::parse(GeminiPost(cli, path, create));
  EXPECT_EQ(op["metadata"]["inputConfig"]["fileName"], file_name);
  op = Parse(cli.Get("/v1beta/" + op["name"].get<std::string>(), kGemini));
  EXPECT_EQ(op["metadata"]["state"], "BATCH_STATE_SUCCEEDED");
  EXPECT_EQ(
      op["metadata"]["batchStats"],
      (Json{{"requestCount", "2"}, {"successfulRequestCount", "1"}, {"failedRequestCount", "1"}}));
  std::string responses = op["response"]["responsesFile"];
  EXPECT_EQ(responses.rfind("files/batch-", 0), 0u);
  auto dl = cli.Get("/download/v1beta/" + responses + ":download?alt=media", kGemini);
  ASSERT_EQ(dl->status, 200);
  std::vector<Json> lines = JsonLines(dl->body);
  ASSERT_EQ(lines.size(), 2u);
  EXPECT_EQ(lines[0]["key"], "f1");
  EXPECT_EQ(lines[0]["response"]["candidates"][0]["content"]["parts"][0]["text"], "echo f1");
  EXPECT_EQ(lines[1]["key"], "f2");
  EXPECT_EQ(lines[1]["error"]["code"], 3);
  EXPECT_EQ(cli.Get("/download/v1beta/" + responses + ":download", kGemini)->status, 400);
  EXPECT_EQ(cli.Get("/download/v1beta/" + file_name + ":download?alt=media", kGemini)->status, 400);

  // Documented: an expired job has no results to retrieve.
  BatchFakeOptions expire = Echo("", 0);
  expire.expire_batches = true;
  server.set_options(expire);
  op = Json::parse(GeminiPost(cli, path, create));
  op = Parse(cli.Get("/v1beta/" + op["name"].get<std::string>(), kGemini));
  EXPECT_EQ(op["metadata"]["state"], "BATCH_STATE_EXPIRED");
  EXPECT_EQ(op["done"], true);
  EXPECT_FALSE(op.contains("response"));
  EXPECT_FALSE(op["metadata"].contains("output"));
}

TEST(BatchFake, GeminiRejectsBadRequests) {
  BatchFakeServer server(Echo("", 0));
  httplib::Client cli("127.0.0.1", server.port());
  std::string path = "/v1beta/models/gemini-test:batchGenerateContent";
  auto r = cli.Post(path, GeminiInline({"a"}).dump(), "application/json");
  EXPECT_EQ(r->status, 403);
  EXPECT_EQ(Parse(r)["error"]["status"], "PERMISSION_DENIED");
  Json no_name = GeminiInline({"a"});
  no_name["batch"].erase("display_name");
  Json both = GeminiInline({"a"});
  both["batch"]["input_config"]["file_name"] = "files/x";
  Json unknown = GeminiInline({"a"});
  unknown["batch"]["bogus"] = 1;
  for (const Json& bad : {no_name, both, unknown, Json{{"batch", 1}}}) {
    r = cli.Post(path, kGemini, bad.dump(), "application/json");
    EXPECT_EQ(r->status, 400) << bad;
    EXPECT_EQ(Parse(r)["error"]["status"], "INVALID_ARGUMENT") << bad;
    EXPECT_EQ(Parse(r)["error"]["code"], 400) << bad;
  }
  r = cli.Get("/v1beta/batches/nope", kGemini);
  EXPECT_EQ(r->status, 404);
  EXPECT_EQ(Parse(r)["error"]["status"], "NOT_FOUND");
  Json missing_file = {
      {"batch", {{"display_name", "x"}, {"input_config", {{"fileName", "files/no"}}}}}};
  EXPECT_EQ(cli.Post(path, kGemini, missing_file.dump(), "application/json")->status, 404);
  EXPECT_EQ(server.creations("gemini"), 0);

  // The upload must deliver the declared length; a bad input line fails the job.
  httplib::Headers start = kGemini;
  start.insert({{"X-Goog-Upload-Protocol", "resumable"},
                {"X-Goog-Upload-Command", "start"},
                {"X-Goog-Upload-Header-Content-Length", "99"}});
  std::string url = cli.Post("/upload/v1beta/files", start, "", "application/json")
                        ->get_header_value("X-Goog-Upload-URL");
  httplib::Headers upload = {{"X-Goog-Upload-Command", "upload, finalize"},
                             {"X-Goog-Upload-Offset", "0"}};
  EXPECT_EQ(cli.Post(url.substr(server.root().size()), upload, "short", "text/plain")->status, 400);
  Json file = GeminiUpload(cli, server.root(), "{\"request\":{}}\n");
  Json create = {{"batch", {{"displayName", "x"}, {"inputConfig", {{"fileName", file["name"]}}}}}};
  Json op = Json::parse(GeminiPost(cli, path, create));
  op = Parse(cli.Get("/v1beta/" + op["name"].get<std::string>(), kGemini));
  EXPECT_EQ(op["metadata"]["state"], "BATCH_STATE_FAILED");
  EXPECT_EQ(op["error"]["code"], 3);
}

TEST(BatchFake, DelaysEveryReply) {
  BatchFakeOptions options;
  options.delay_ms = 60;
  BatchFakeServer server(options);
  httplib::Client cli("127.0.0.1", server.port());
  auto start = std::chrono::steady_clock::now();
  EXPECT_EQ(cli.Get("/v1/batches/batch_nope", kOpenAi)->status, 404);
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(60));
  EXPECT_EQ(server.log(),
            (std::vector<std::pair<std::string, std::string>>{{"GET", "/v1/batches/batch_nope"}}));
}

}  // namespace
}  // namespace plumb::testing
