// Status/Result, templates, registry suggestions, hashing, the seeded generator, redaction.
#include <gtest/gtest.h>

#include <set>

#include "plumb/hash.h"
#include "plumb/log.h"
#include "plumb/registry.h"
#include "plumb/result.h"
#include "plumb/text.h"

namespace plumb {
namespace {

Result<int> Half(int x) {
  if (x % 2) return InvalidArgument("odd");
  return x / 2;
}

Result<int> Quarter(int x) {
  PLUMB_ASSIGN_OR_RETURN(int h, Half(x));
  PLUMB_ASSIGN_OR_RETURN(int q, Half(h));
  return q;
}

TEST(Result, PropagatesErrorsThroughMacros) {
  EXPECT_EQ(*Quarter(8), 2);
  auto r = Quarter(6);
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().ToString(), "invalid_argument: odd");
  EXPECT_EQ(Status(StatusCode::kUnavailable, "x").WithPrefix("backend").message(), "backend: x");
  EXPECT_TRUE(IsRetryable(StatusCode::kResourceExhausted));
  EXPECT_FALSE(IsRetryable(StatusCode::kUnauthenticated));
}

TEST(Templates, RenderOnePassAndEscapes) {
  auto out = RenderTemplate("{a} and {{literal}} {b}", {{"a", "{b}"}, {"b", "B"}});
  ASSERT_TRUE(out.has_value());
  EXPECT_EQ(*out, "{b} and {literal} B");
  EXPECT_FALSE(RenderTemplate("{missing}", {}).has_value());
  Status s = CheckTemplate("x {prompt} {nope}", {"prompt"}, "suite.yaml:4: field 'template'");
  EXPECT_EQ(s.message(),
            "suite.yaml:4: field 'template': unknown placeholder '{nope}' (known: {prompt})");
  EXPECT_FALSE(TemplatePlaceholders("unclosed {a").has_value());
}

TEST(Registry, SuggestsCloseNames) {
  Registry<int, int> r("backend kind");
  r.Register("openai", "",
             [](const int&) -> Result<std::unique_ptr<int>> { return std::make_unique<int>(1); });
  r.Register("builtin", "",
             [](const int&) -> Result<std::unique_ptr<int>> { return std::make_unique<int>(2); });
  auto x = r.Create("opnai", 0);
  ASSERT_FALSE(x.has_value());
  EXPECT_EQ(x.error().message(),
            "unknown backend kind 'opnai' (did you mean 'openai'?); known: builtin, openai");
  EXPECT_EQ(**r.Create("builtin", 0), 2);
}

TEST(Hash, Sha256KnownVector) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(Rng, IsDeterministicAndUniformEnough) {
  Rng a(42), b(42);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(a.Next(), b.Next());
  Rng c(7);
  int counts[4] = {0, 0, 0, 0};
  for (int i = 0; i < 40000; ++i) counts[c.Below(4)]++;
  for (int k : counts) EXPECT_NEAR(k, 10000, 400);
  auto p = Rng(3).Permutation(6);
  EXPECT_EQ(std::set<int>(p.begin(), p.end()).size(), 6u);
  EXPECT_NE(DeriveSeed(1, "item-a", 0), DeriveSeed(1, "item-b", 0));
  EXPECT_NE(DeriveSeed(1, "item-a", 0), DeriveSeed(1, "item-a", 1));
  EXPECT_EQ(DeriveSeed(9, "x", 2), DeriveSeed(9, "x", 2));
}

TEST(Redact, RemovesRegisteredSecretsAndKeyShapes) {
  RegisterSecret("my-very-secret-token-123");
  EXPECT_EQ(Redact("key my-very-secret-token-123 used"), "key [redacted] used");
  EXPECT_EQ(Redact("Incorrect API key provided: sk-abc123********wxyz."),
            "Incorrect API key provided: [redacted]");
  EXPECT_EQ(Redact("Authorization: Bearer abcdefghijkl"), "Authorization: [redacted]");
  EXPECT_EQ(Redact("nothing to hide"), "nothing to hide");
}

TEST(Text, Helpers) {
  EXPECT_EQ(Trim("  a b \n"), "a b");
  EXPECT_EQ(ToLower("AbC"), "abc");
  EXPECT_EQ(NormalizeQuotes("I\u2019m \u201Cok\u201D"), "I'm \"ok\"");
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3u);
}

}  // namespace
}  // namespace plumb
