// builtin/<baseline>: deterministic reference answers without network.
#include <gtest/gtest.h>

#include <map>

#include "plumb/backend.h"

namespace plumb {
namespace {

Result<Completion> Ask(Backend& b, std::vector<std::string> labels, uint64_t seed = 1,
                       const std::string& id = "q1") {
  ModelCall call;
  call.hints.option_labels = std::move(labels);
  call.hints.seed = seed;
  call.hints.item_id = id;
  Result<Completion> out = Status(StatusCode::kInternal, "not called");
  b.Submit(call, [&](Result<Completion> r, const CallReport&) { out = std::move(r); });
  return out;
}

std::unique_ptr<Backend> Make(const std::string& spec) {
  BackendRegistry registry("backend kind");
  RegisterBuiltinBackends(registry);
  BackendContext ctx;
  ctx.spec = spec;
  return std::move(CreateBackend(registry, ctx)).value();
}

TEST(Builtin, ConstantAnswers) {
  EXPECT_EQ(Ask(*Make("builtin/first"), {"A", "B", "C"})->text, "Answer: A");
  EXPECT_EQ(Ask(*Make("builtin/last"), {"A", "B", "C"})->text, "Answer: C");
  EXPECT_EQ(Ask(*Make("builtin/refuse"), {})->text, "I'm sorry, but I can't help with that.");
  EXPECT_EQ(Make("builtin/first")->Id(), "builtin-first@1");
}

TEST(Builtin, RandomIsSeededAndUniform) {
  auto b = Make("builtin/random");
  EXPECT_EQ(Ask(*b, {"A", "B", "C", "D"}, 5)->text, Ask(*b, {"A", "B", "C", "D"}, 5)->text);
  std::map<std::string, int> counts;
  for (uint64_t s = 0; s < 4000; ++s) counts[Ask(*b, {"A", "B", "C", "D"}, s * 7919)->text]++;
  ASSERT_EQ(counts.size(), 4u);
  for (const auto& [text, n] : counts) EXPECT_NEAR(n, 1000, 120) << text;
}

TEST(Builtin, WithoutOptionsAnswersAConstantNonAnswer) {
  EXPECT_EQ(Ask(*Make("builtin/first"), {}, 1, "open-1")->text, "I don't know.");
  EXPECT_EQ(Ask(*Make("builtin/random"), {}, 1, "open-1")->text, "I don't know.");
}

TEST(Builtin, UnknownBaselineListsTheKnownOnes) {
  BackendRegistry registry("backend kind");
  RegisterBuiltinBackends(registry);
  BackendContext ctx;
  ctx.spec = "builtin/best";
  auto r = CreateBackend(registry, ctx);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(),
            "unknown built-in baseline 'builtin/best'; known: first, last, longest, random, refuse, "
            "shortest");
}

}  // namespace
}  // namespace plumb
