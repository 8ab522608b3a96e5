// The batch formats of the openai, anthropic and google backends as pure functions: the
// requests they build for each step and how they read the providers' documented replies.
#include <gtest/gtest.h>

#include <map>

#include "plumb/batch.h"
#include "unit/backends/backend_test_util.h"

namespace plumb {
namespace {

using testing::FakeEnv;
using testing::Fixture;
using testing::Header;

ModelCall Ask(const std::string& text) {
  ModelCall call;
  call.messages = {{"user", text}};
  call.params.max_tokens = 50;
  call.params.temperature = 0;
  return call;
}

HttpResponse Ok(const Json& body) { return HttpResponse{200, {}, body.dump(), 1}; }

TEST(OpenAiBatch, UploadsAFileCreatesABatchAndReadsBothResultFiles) {
  Fixture f;
  FakeEnv env(std::map<std::string, std::string>{{"OPENAI_API_KEY", "sk-test-batch-0000"}});
  auto b = f.Make("openai/gpt-4o-mini", env);
  ASSERT_TRUE(b.has_value());
  const BatchApi* api = AsBatchApi(**b);
  ASSERT_NE(api, nullptr);
  EXPECT_EQ(api->BatchProvider(), "openai");
  EXPECT_EQ(api->DefaultBatchLimits().max_requests, 50'000);
  EXPECT_EQ(api->DefaultBatchLimits().max_bytes, 200'000'000);
  Json line = *api->BatchLine("p1", Ask("Hi"));
  EXPECT_EQ(line["custom_id"], "p1");
  EXPECT_EQ(line["method"], "POST");
  EXPECT_EQ(line["url"], "/v1/chat/completions");
  EXPECT_EQ(line["body"]["model"], "gpt-4o-mini");
  EXPECT_EQ(line["body"]["messages"][0]["content"], "Hi");
  EXPECT_EQ(line["body"]["max_completion_tokens"], 50);

  Json info = Json::object();
  auto upload = api->SubmitStep({line, *api->BatchLine("p2", Ask("Yo"))}, info);
  ASSERT_TRUE(upload.has_value() && upload->has_value());
  const HttpRequest& u = **upload;
  EXPECT_EQ(u.method, "POST");
  EXPECT_EQ(u.url, "https://api.openai.com/v1/files");
  EXPECT_EQ(Header(u, "Authorization"), "Bearer sk-test-batch-0000");
  std::string type = Header(u, "Content-Type");
  ASSERT_EQ(type.rfind("multipart/form-data; boundary=", 0), 0u) << type;
  std::string boundary = type.substr(type.find('=') + 1);
  EXPECT_NE(u.body.find("--" + boundary +
                        "\r\nContent-Disposition: form-data; name=\"purpose\""
                        "\r\n\r\nbatch\r\n"),
            std::string::npos);
  EXPECT_NE(u.body.find("name=\"file\"; filename=\"plumb-batch.jsonl\""), std::string::npos);
  EXPECT_NE(u.body.find(line.dump() + "\n"), std::string::npos);
  EXPECT_NE(u.body.find("\r\n--" + boundary + "--\r\n"), std::string::npos);
  // The File object, then the create call.
  ASSERT_TRUE(api->ReadSubmitStep(Ok({{"id", "file-abc123"},
                                      {"object", "file"},
                                      {"bytes", 120000},
                                      {"created_at", 1677610602},
                                      {"filename", "plumb-batch.jsonl"},
                                      {"purpose", "batch"}}),
                                  info)
                  .ok());
  EXPECT_EQ(info["input_file_id"], "file-abc123");
  auto create = api->SubmitStep({line}, info);
  ASSERT_TRUE(create.has_value() && create->has_value());
  EXPECT_EQ((*create)->url, "https://api.openai.com/v1/batches");
  Json body = Json::parse((*create)->body);
  EXPECT_EQ(body["input_file_id"], "file-abc123");
  EXPECT_EQ(body["endpoint"], "/v1/chat/completions");
  EXPECT_EQ(body["completion_window"], "24h");
  ASSERT_TRUE(
      api->ReadSubmitStep(Ok({{"id", "batch_abc123"},
                              {"object", "batch"},
                              {"endpoint", "/v1/chat/completions"},
                              {"input_file_id", "file-abc123"},
                              {"completion_window", "24h"},
                              {"status", "validating"},
                              {"output_file_id", nullptr},
                              {"error_file_id", nullptr},
                              {"request_counts", {{"total", 0}, {"completed", 0}, {"failed", 0}}}}),
                          info)
          .ok());
  EXPECT_EQ(info["id"], "batch_abc123");
  EXPECT_FALSE(api->SubmitStep({line}, info)->has_value());  // submitted

  HttpRequest status = api->StatusRequest(info);
  EXPECT_EQ(status.method, "GET");
  EXPECT_EQ(status.url, "https://api.openai.com/v1/batches/batch_abc123");
  auto running =
      api->ReadStatus(Ok({{"id", "batch_abc123"},
                          {"status", "in_progress"},
                          {"request_counts", {{"total", 2}, {"completed", 1}, {"failed", 0}}}}),
                      info);
  ASSERT_TRUE(running.has_value());
  EXPECT_FALSE(running->ended);
  EXPECT_EQ(running->total, 2);
  EXPECT_EQ(running->succeeded, 1);
  auto done =
      api->ReadStatus(Ok({{"id", "batch_abc123"},
                          {"status", "completed"},
                          {"output_file_id", "file-out"},
                          {"error_file_id", "file-err"},
                          {"request_counts", {{"total", 2}, {"completed", 1}, {"failed", 1}}}}),
                      info);
  ASSERT_TRUE(done.has_value());
  EXPECT_TRUE(done->ended);
  EXPECT_FALSE(done->failed);
  auto downloads = api->ResultRequests(info);
  ASSERT_EQ(downloads.size(), 2u);
  EXPECT_EQ(downloads[0].url, "https://api.openai.com/v1/files/file-out/content");
  EXPECT_EQ(downloads[1].url, "https://api.openai.com/v1/files/file-err/content");

  Json ok = {
      {"id", "batch_req_1"},
      {"custom_id", "p1"},
      {"response",
       {{"status_code", 200},
        {"request_id", "req_1"},
        {"body",
         {{"id", "chatcmpl-1"},
          {"object", "chat.completion"},
          {"choices",
           {{{"index", 0},
             {"message", {{"role", "assistant"}, {"content", "Answer: B"}}},
             {"finish_reason", "stop"}}}},
          {"usage", {{"prompt_tokens", 12}, {"completion_tokens", 3}, {"total_tokens", 15}}}}}}},
      {"error", nullptr}};
  Json failed = {{"id", "batch_req_2"},
                 {"custom_id", "p2"},
                 {"response",
                  {{"status_code", 400},
                   {"request_id", "req_2"},
                   {"body",
                    {{"error",
                      {{"message", "Invalid value for 'max_completion_tokens'."},
                       {"type", "invalid_request_error"}}}}}}},
                 {"error", nullptr}};
  Json expired = {
      {"id", "batch_req_3"},
      {"custom_id", "p3"},
      {"response", nullptr},
      {"error",
       {{"code", "batch_expired"},
        {"message", "This request could not be executed before the completion window expired."}}}};
  auto results =
      api->ReadResults(ok.dump() + "\n" + failed.dump() + "\n" + expired.dump() + "\n", info);
  ASSERT_TRUE(results.has_value()) << results.error().message();
  ASSERT_EQ(results->size(), 3u);
  EXPECT_EQ((*results)[0].custom_id, "p1");
  EXPECT_EQ((*results)[0].kind, BatchLineResult::Kind::kOk);
  EXPECT_EQ((*results)[0].completion.text, "Answer: B");
  EXPECT_EQ(*(*results)[0].completion.prompt_tokens, 12);
  EXPECT_EQ((*results)[1].kind, BatchLineResult::Kind::kError);
  EXPECT_EQ((*results)[1].error.message(),
            "backend 'openai': HTTP 400: Invalid value for 'max_completion_tokens'.");
  EXPECT_EQ((*results)[2].kind, BatchLineResult::Kind::kExpired);

  EXPECT_EQ(api->CancelRequest(info).url, "https://api.openai.com/v1/batches/batch_abc123/cancel");
  auto failed_batch = api->ReadStatus(
      Ok({{"id", "batch_abc123"},
          {"status", "failed"},
          {"errors",
           {{"object", "list"},
            {"data", {{{"code", "invalid_json_line"}, {"message", "line 1 is not JSON"}}}}}}}),
      info);
  EXPECT_TRUE(failed_batch->ended);
  EXPECT_TRUE(failed_batch->failed);
  EXPECT_EQ(failed_batch->message, "line 1 is not JSON");
}

TEST(AnthropicBatch, CreatesAMessageBatchAndReadsItsResults) {
  Fixture f;
  FakeEnv env(std::map<std::string, std::string>{{"ANTHROPIC_API_KEY", "sk-ant-batch-0000"}});
  auto b = f.Make("anthropic/claude-test", env);
  ASSERT_TRUE(b.has_value());
  const BatchApi* api = AsBatchApi(**b);
  ASSERT_NE(api, nullptr);
  EXPECT_EQ(api->DefaultBatchLimits().max_requests, 100'000);
  EXPECT_EQ(api->DefaultBatchLimits().max_bytes, 256'000'000);
  Json line = *api->BatchLine("p1", Ask("Hi"));
  EXPECT_EQ(line["custom_id"], "p1");
  EXPECT_EQ(line["params"]["model"], "claude-test");
  EXPECT_EQ(line["params"]["max_tokens"], 50);
  EXPECT_EQ(line["params"]["messages"][0]["role"], "user");
  Json info = Json::object();
  auto create = api->SubmitStep({line}, info);
  ASSERT_TRUE(create.has_value() && create->has_value());
  EXPECT_EQ((*create)->url, "https://api.anthropic.com/v1/messages/batches");
  EXPECT_EQ(Header(**create, "x-api-key"), "sk-ant-batch-0000");
  EXPECT_EQ(Header(**create, "anthropic-version"), "2023-06-01");
  EXPECT_EQ(Json::parse((*create)->body)["requests"][0], line);
  ASSERT_TRUE(api->ReadSubmitStep(Ok({{"id", "msgbatch_013Zva"},
                                      {"type", "message_batch"},
                                      {"processing_status", "in_progress"},
                                      {"request_counts",
                                       {{"processing", 1},
                                        {"succeeded", 0},
                                        {"errored", 0},
                                        {"canceled", 0},
                                        {"expired", 0}}},
                                      {"ended_at", nullptr},
                                      {"results_url", nullptr}}),
                                  info)
                  .ok());
  EXPECT_EQ(api->StatusRequest(info).url,
            "https://api.anthropic.com/v1/messages/batches/msgbatch_013Zva");
  auto ended = api->ReadStatus(
      Ok({{"id", "msgbatch_013Zva"},
          {"type", "message_batch"},
          {"processing_status", "ended"},
          {"request_counts",
           {{"processing", 0}, {"succeeded", 1}, {"errored", 1}, {"canceled", 1}, {"expired", 1}}},
          {"results_url",
           "https://api.anthropic.com/v1/messages/batches/msgbatch_013Zva/results"}}),
      info);
  ASSERT_TRUE(ended.has_value());
  EXPECT_TRUE(ended->ended);
  EXPECT_EQ(ended->total, 4);
  EXPECT_EQ(ended->succeeded, 1);
  auto downloads = api->ResultRequests(info);
  ASSERT_EQ(downloads.size(), 1u);
  EXPECT_EQ(downloads[0].method, "GET");
  EXPECT_EQ(downloads[0].url,
            "https://api.anthropic.com/v1/messages/batches/msgbatch_013Zva/results");
  EXPECT_EQ(Header(downloads[0], "x-api-key"), "sk-ant-batch-0000");
  std::string jsonl =
      Json{{"custom_id", "p1"},
           {"result",
            {{"type", "succeeded"},
             {"message",
              {{"id", "msg_1"},
               {"type", "message"},
               {"role", "assistant"},
               {"content", {{{"type", "text"}, {"text", "Answer: C"}}}},
               {"stop_reason", "end_turn"},
               {"usage", {{"input_tokens", 9}, {"output_tokens", 2}}}}}}}}
          .dump() +
      "\n" +
      Json{{"custom_id", "p2"},
           {"result",
            {{"type", "errored"},
             {"error",
              {{"type", "error"},
               {"error",
                {{"type", "invalid_request_error"}, {"message", "max_tokens: too big"}}}}}}}}
          .dump() +
      "\n" + R"({"custom_id":"p3","result":{"type":"canceled"}})" + "\n" +
      R"({"custom_id":"p4","result":{"type":"expired"}})" + "\n";
  auto results = api->ReadResults(jsonl, info);
  ASSERT_TRUE(results.has_value()) << results.error().message();
  ASSERT_EQ(results->size(), 4u);
  EXPECT_EQ((*results)[0].completion.text, "Answer: C");
  EXPECT_EQ((*results)[0].completion.finish_reason, "end_turn");
  EXPECT_EQ((*results)[1].kind, BatchLineResult::Kind::kError);
  EXPECT_EQ((*results)[1].error.message(),
            "backend 'anthropic': in the batch: invalid_request_error: max_tokens: too big");
  EXPECT_EQ((*results)[2].kind, BatchLineResult::Kind::kCancelled);
  EXPECT_EQ((*results)[3].kind, BatchLineResult::Kind::kExpired);
  EXPECT_EQ(api->CancelRequest(info).url,
            "https://api.anthropic.com/v1/messages/batches/msgbatch_013Zva/cancel");
}

TEST(GeminiBatch, InlineRequestsAndInlineResponses) {
  Fixture f;
  FakeEnv env(std::map<std::string, std::string>{{"GEMINI_API_KEY", "AIza-batch-key-0000000000"}});
  auto b = f.Make("google/gemini-test", env);
  ASSERT_TRUE(b.has_value());
  const BatchApi* api = AsBatchApi(**b);
  ASSERT_NE(api, nullptr);
  Json line = *api->BatchLine("p1", Ask("Hi"));
  EXPECT_EQ(line["metadata"]["key"], "p1");
  EXPECT_EQ(line["request"]["contents"][0]["parts"][0]["text"], "Hi");
  Json info = Json::object();
  auto create = api->SubmitStep({line}, info);
  ASSERT_TRUE(create.has_value() && create->has_value());
  EXPECT_EQ((*create)->url,
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-test:"
            "batchGenerateContent");
  EXPECT_EQ(Header(**create, "x-goog-api-key"), "AIza-batch-key-0000000000");
  Json body = Json::parse((*create)->body);
  EXPECT_EQ(body["batch"]["display_name"], "plumb");
  EXPECT_EQ(body["batch"]["input_config"]["requests"]["requests"][0], line);
  ASSERT_TRUE(
      api->ReadSubmitStep(
             Ok({{"name", "batches/123456"},
                 {"metadata",
                  {{"@type",
                    "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatch"},
                   {"name", "batches/123456"},
                   {"state", "BATCH_STATE_PENDING"}}}}),
             info)
          .ok());
  EXPECT_EQ(info["id"], "batches/123456");
  EXPECT_EQ(api->StatusRequest(info).url,
            "https://generativelanguage.googleapis.com/v1beta/batches/123456");
  auto pending = api->ReadStatus(
      Ok({{"name", "batches/123456"}, {"metadata", {{"state", "BATCH_STATE_RUNNING"}}}}), info);
  ASSERT_TRUE(pending.has_value());
  EXPECT_FALSE(pending->ended);
  Json done = {
      {"name", "batches/123456"},
      {"metadata",
       {{"state", "BATCH_STATE_SUCCEEDED"},
        {"batchStats",
         {{"requestCount", "2"}, {"successfulRequestCount", "1"}, {"failedRequestCount", "1"}}}}},
      {"done", true},
      {"response",
       {{"@type",
         "type.googleapis.com/google.ai.generativelanguage.v1main.GenerateContentBatchOutput"},
        {"inlinedResponses",
         {{"inlinedResponses",
           {{{"response",
              {{"candidates",
                {{{"content", {{"role", "model"}, {"parts", {{{"text", "Answer: D"}}}}}},
                  {"finishReason", "STOP"}}}},
               {"usageMetadata", {{"promptTokenCount", 7}, {"candidatesTokenCount", 2}}}}},
             {"metadata", {{"key", "p1"}}}},
            {{"error", {{"code", 400}, {"message", "Request contains an invalid argument."}}},
             {"metadata", {{"key", "p2"}}}}}}}}}}};
  auto ended = api->ReadStatus(Ok(done), info);
  ASSERT_TRUE(ended.has_value());
  EXPECT_TRUE(ended->ended);
  EXPECT_EQ(ended->total, 2);
  EXPECT_EQ(ended->succeeded, 1);
  EXPECT_TRUE(api->ResultRequests(info).empty());  // inline: the results came with the status
  auto results = api->ReadResults(done.dump(), info);
  ASSERT_TRUE(results.has_value()) << results.error().message();
  ASSERT_EQ(results->size(), 2u);
  EXPECT_EQ((*results)[0].custom_id, "p1");
  EXPECT_EQ((*results)[0].completion.text, "Answer: D");
  EXPECT_EQ((*results)[1].custom_id, "p2");
  EXPECT_EQ((*results)[1].kind, BatchLineResult::Kind::kError);
  EXPECT_EQ((*results)[1].error.message(),
            "backend 'google': in the batch: Request contains an invalid argument.");
  EXPECT_EQ(api->CancelRequest(info).url,
            "https://generativelanguage.googleapis.com/v1beta/batches/123456:cancel");
}

TEST(GeminiBatch, AboveTwentyMegabytesAFileIsUploadedAndTheResultsDownloaded) {
  Fixture f;
  FakeEnv env(std::map<std::string, std::string>{{"GEMINI_API_KEY", "AIza-batch-key-0000000000"}});
  auto b = f.Make("google/gemini-test", env);
  const BatchApi* api = AsBatchApi(**b);
  std::vector<Json> lines = {*api->BatchLine("p1", Ask(std::string(21'000'000, 'x'))),
                             *api->BatchLine("p2", Ask("small"))};
  Json info = Json::object();
  auto start = api->SubmitStep(lines, info);
  ASSERT_TRUE(start.has_value() && start->has_value());
  EXPECT_EQ((*start)->url, "https://generativelanguage.googleapis.com/upload/v1beta/files");
  EXPECT_EQ(Header(**start, "X-Goog-Upload-Protocol"), "resumable");
  EXPECT_EQ(Header(**start, "X-Goog-Upload-Command"), "start");
  EXPECT_EQ(Header(**start, "X-Goog-Upload-Header-Content-Type"), "application/jsonl");
  size_t length = std::stoul(Header(**start, "X-Goog-Upload-Header-Content-Length"));
  HttpResponse started{200, {{"x-goog-upload-url", "https://upload.example/u?id=1"}}, "{}", 1};
  ASSERT_TRUE(api->ReadSubmitStep(started, info).ok());
  auto upload = api->SubmitStep(lines, info);
  ASSERT_TRUE(upload.has_value() && upload->has_value());
  EXPECT_EQ((*upload)->url, "https://upload.example/u?id=1");
  EXPECT_EQ(Header(**upload, "X-Goog-Upload-Command"), "upload, finalize");
  EXPECT_EQ(Header(**upload, "X-Goog-Upload-Offset"), "0");
  EXPECT_EQ((*upload)->body.size(), length);
  Json first = Json::parse((*upload)->body.substr(0, (*upload)->body.find('\n')));
  EXPECT_EQ(first["key"], "p1");
  EXPECT_TRUE(first["request"].contains("contents"));
  ASSERT_TRUE(api->ReadSubmitStep(Ok({{"file", {{"name", "files/abc-123"}}}}), info).ok());
  auto create = api->SubmitStep(lines, info);
  ASSERT_TRUE(create.has_value() && create->has_value());
  EXPECT_EQ(Json::parse((*create)->body)["batch"]["input_config"]["file_name"], "files/abc-123");
  ASSERT_TRUE(api->ReadSubmitStep(Ok({{"name", "batches/9"}}), info).ok());
  auto ended = api->ReadStatus(Ok({{"name", "batches/9"},
                                   {"metadata", {{"state", "BATCH_STATE_SUCCEEDED"}}},
                                   {"done", true},
                                   {"response", {{"responsesFile", "files/out-9"}}}}),
                               info);
  ASSERT_TRUE(ended->ended);
  auto downloads = api->ResultRequests(info);
  ASSERT_EQ(downloads.size(), 1u);
  EXPECT_EQ(
      downloads[0].url,
      "https://generativelanguage.googleapis.com/download/v1beta/files/out-9:download?alt=media");
  std::string jsonl =
      R"({"key":"p2","response":{"candidates":[{"content":{"parts":[{"text":"Answer: A"}],"role":"model"},"finishReason":"STOP"}]}})"
      "\n"
      R"({"key":"p1","error":{"code":400,"message":"too long","status":"INVALID_ARGUMENT"}})"
      "\n";
  auto results = api->ReadResults(jsonl, info);
  ASSERT_TRUE(results.has_value()) << results.error().message();
  ASSERT_EQ(results->size(), 2u);
  EXPECT_EQ((*results)[0].custom_id, "p2");
  EXPECT_EQ((*results)[0].completion.text, "Answer: A");
  EXPECT_EQ((*results)[1].kind, BatchLineResult::Kind::kError);
}

TEST(Batch, BackendsWithoutABatchApi) {
  Fixture f;
  FakeEnv env(std::map<std::string, std::string>{});
  for (const char* spec : {"builtin/random", "exec/cat"}) {
    auto b = f.Make(spec, env);
    ASSERT_TRUE(b.has_value()) << spec;
    EXPECT_EQ(AsBatchApi(**b), nullptr) << spec;
  }
}

}  // namespace
}  // namespace plumb
