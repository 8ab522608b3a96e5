// replay/<file>: stored outputs answer items by id (and epoch, turn).
#include <gtest/gtest.h>

#include "plumb/backend.h"
#include "subprocess.h"

namespace plumb {
namespace {

using testing::TempDir;

Result<std::unique_ptr<Backend>> Make(const std::string& path,
                                      std::map<std::string, std::string> options = {}) {
  BackendRegistry registry("backend kind");
  RegisterBuiltinBackends(registry);
  BackendContext ctx;
  ctx.spec = "replay/" + path;
  ctx.options = std::move(options);
  return CreateBackend(registry, ctx);
}

Result<Completion> Ask(Backend& b, const std::string& id, int epoch = 0, int turn = 0) {
  ModelCall call;
  call.hints.item_id = id;
  call.hints.epoch = epoch;
  call.hints.turn = turn;
  Result<Completion> out = Status(StatusCode::kInternal, "not called");
  b.Submit(call, [&](Result<Completion> r, const CallReport&) { out = std::move(r); });
  return out;
}

TEST(Replay, AnswersFromJsonlByIdAndEpoch) {
  TempDir tmp;
  std::string f = tmp.Write("out.jsonl", R"({"id": "q1", "epoch": 0, "text": "Answer: A"})"
                                         "\n"
                                         R"({"id": "q1", "epoch": 1, "text": "Answer: B"})"
                                         "\n"
                                         R"({"id": 7, "epoch": 0, "text": "seven"})"
                                         "\n");
  auto b = Make(f);
  ASSERT_TRUE(b.has_value()) << b.error().message();
  EXPECT_EQ((*b)->Id(), "replay@1");
  EXPECT_EQ(Ask(**b, "q1", 0)->text, "Answer: A");
  EXPECT_EQ(Ask(**b, "q1", 1)->text, "Answer: B");
  EXPECT_EQ(Ask(**b, "7")->text, "seven");
  auto missing = Ask(**b, "q9");
  ASSERT_FALSE(missing.has_value());
  EXPECT_EQ(missing.error().code(), StatusCode::kInvalidArgument);  // an item error, not fatal
  EXPECT_FALSE(IsFatalForRun(missing.error().code()));
  EXPECT_EQ(missing.error().message(),
            "replay: no stored output for item 'q9' (epoch 0, turn 0) in " + f);
}

TEST(Replay, CsvWithConfiguredColumnsAndMultilineReplies) {
  TempDir tmp;
  std::string f = tmp.Write(
      "out.csv",
      "scenario_id,model,response\r\nEP1-001,m,\"A\r\nBecause people first.\"\r\nEP1-003,m,B\r\n");
  auto b = Make(f, {{"id", "scenario_id"}, {"text", "response"}});
  ASSERT_TRUE(b.has_value()) << b.error().message();
  EXPECT_EQ(Ask(**b, "EP1-001")->text, "A\nBecause people first.");
  EXPECT_EQ(Ask(**b, "EP1-003", 2)->text, "B");         // no epoch column: every epoch gets the row
  EXPECT_FALSE(Ask(**b, "EP1-003", 0, 1).has_value());  // no turn column: only first turns
}

TEST(Replay, BadFilesAreLoadErrors) {
  TempDir tmp;
  std::string dup = tmp.Write("dup.jsonl", R"({"id": "a", "text": "x"})"
                                           "\n"
                                           R"({"id": "a", "text": "y"})"
                                           "\n");
  EXPECT_EQ(Make(dup).error().message(),
            dup + ":2: a second output for item 'a' (epoch 0, turn 0)");
  std::string notext = tmp.Write("nt.jsonl", R"({"id": "a", "reply": "x"})"
                                             "\n");
  EXPECT_EQ(Make(notext).error().message(),
            notext + ":1: field 'text' must be a string (see --backend-option text=COLUMN)");
  EXPECT_EQ(Make(tmp.path() + "/none.jsonl").error().code(), StatusCode::kNotFound);
  EXPECT_EQ(Make(dup, {{"colour", "x"}}).error().message(),
            "backend 'replay': unknown --backend-option 'colour' (known: id, text, epoch, turn, "
            "epochs, tool_calls)");
}

// issue 11: published outputs hold many answers per question and no epoch column.
TEST(Replay, Issue11RowsOfAnItemAreItsEpochsInFileOrderWhenAsked) {
  TempDir tmp;
  std::string f = tmp.Write("out.csv", "question_id,answer\nq1,first\nq2,other\nq1,second\n");
  auto b = Make(f, {{"id", "question_id"}, {"text", "answer"}, {"epochs", "file_order"}});
  ASSERT_TRUE(b.has_value()) << b.error().message();
  EXPECT_EQ(Ask(**b, "q1", 0)->text, "first");
  EXPECT_EQ(Ask(**b, "q1", 1)->text, "second");
  EXPECT_EQ(Ask(**b, "q2", 0)->text, "other");
  EXPECT_FALSE(Ask(**b, "q2", 1).has_value());
  // Off by default: a second row of an item is an error, as before.
  auto dup = Make(f, {{"id", "question_id"}, {"text", "answer"}});
  ASSERT_FALSE(dup.has_value());
  std::string with_epoch = tmp.Write("e.jsonl", R"({"id": "q1", "epoch": 0, "text": "a"})"
                                                "\n");
  EXPECT_EQ(Make(with_epoch, {{"epochs", "file_order"}}).error().code(),
            StatusCode::kInvalidArgument);
  EXPECT_EQ(Make(f, {{"epochs", "sometimes"}}).error().code(), StatusCode::kInvalidArgument);
}

TEST(Replay, StoredToolCallsInEachShapeAndPerTurn) {
  TempDir tmp;
  std::string f = tmp.Write(
      "agent.jsonl",
      R"({"id": "e1", "turn": 0, "text": "Looking.", "tool_calls": [{"name": "read_file", "arguments": {"path": "/a"}}, {"id": "t2", "name": "ls", "input": {}}]})"
      "\n"
      R"({"id": "e1", "turn": 1, "tool_calls": [{"id": "c9", "type": "function", "function": {"name": "stop", "arguments": "{\"now\":true}"}}]})"
      "\n");
  auto b = Make(f);
  ASSERT_TRUE(b.has_value()) << b.error().message();
  auto t0 = Ask(**b, "e1", 0, 0);
  ASSERT_TRUE(t0.has_value()) << t0.error().message();
  EXPECT_EQ(t0->text, "Looking.");
  ASSERT_EQ(t0->tool_calls.size(), 2u);
  EXPECT_EQ(t0->tool_calls[0].id, "call_0");
  EXPECT_EQ(t0->tool_calls[0].name, "read_file");
  EXPECT_EQ(t0->tool_calls[0].arguments, R"({"path":"/a"})");
  EXPECT_EQ(t0->tool_calls[1].id, "t2");
  EXPECT_EQ(t0->tool_calls[1].arguments, "{}");
  auto t1 = Ask(**b, "e1", 0, 1);
  ASSERT_TRUE(t1.has_value()) << t1.error().message();
  EXPECT_EQ(t1->text, "");
  ASSERT_EQ(t1->tool_calls.size(), 1u);
  EXPECT_EQ(t1->tool_calls[0].id, "c9");
  EXPECT_EQ(t1->tool_calls[0].name, "stop");
  EXPECT_EQ(t1->tool_calls[0].arguments, R"({"now":true})");

  std::string bad = tmp.Write("bad.jsonl", R"({"id": "e1", "tool_calls": [{"arguments": {}}]})"
                                           "\n");
  auto nameless = Make(bad);
  ASSERT_FALSE(nameless.has_value());
  EXPECT_EQ(
      nameless.error().message(),
      bad + ":1: field 'tool_calls': each tool call needs a string 'name' (or function.name)");
}

}  // namespace
}  // namespace plumb
