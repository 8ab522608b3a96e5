// Strict JSON/YAML reading: duplicate keys, types, unknown keys, locations in messages.
#include "plumb/json.h"

#include <gtest/gtest.h>

namespace plumb {
namespace {

TEST(ParseJsonStrict, RejectsDuplicateKeys) {
  auto r = ParseJsonStrict(R"({"a": 1, "b": {"c": 1, "c": 2}})", "f.jsonl:3");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message(), "f.jsonl:3: duplicate key 'c'");
  EXPECT_EQ(r.error().code(), StatusCode::kInvalidArgument);
}

TEST(ParseJsonStrict, SameKeyInSiblingObjectsIsFine) {
  auto r = ParseJsonStrict(R"([{"a": 1}, {"a": 2}])", "f");
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ((*r)[1]["a"], 2);
}

TEST(ParseJsonStrict, SyntaxErrorNamesPlace) {
  auto r = ParseJsonStrict(R"({"a": })", "items.jsonl:7");
  ASSERT_FALSE(r.has_value());
  EXPECT_EQ(r.error().message().rfind("items.jsonl:7: invalid JSON: syntax error", 0), 0u)
      << r.error().message();
}

TEST(ParseYaml, ResolvesScalarsLikeYaml12Core) {
  auto doc = ParseYaml(
      "i: 12\nf: 0.5\nb: true\nn: ~\nq: \"12\"\ns: hello\nblock: |-\n  two\n  lines\nneg: -3\n",
      "s.yaml");
  ASSERT_TRUE(doc.has_value()) << doc.error().message();
  const Json& v = doc->value;
  EXPECT_TRUE(v["i"].is_number_integer());
  EXPECT_EQ(v["i"], 12);
  EXPECT_DOUBLE_EQ(v["f"].get<double>(), 0.5);
  EXPECT_EQ(v["b"], true);
  EXPECT_TRUE(v["n"].is_null());
  EXPECT_EQ(v["q"], "12");
  EXPECT_EQ(v["s"], "hello");
  EXPECT_EQ(v["block"], "two\nlines");
  EXPECT_EQ(v["neg"], -3);
}

TEST(ParseYaml, ResolvesAnchorsAndAliases) {
  auto doc = ParseYaml("base: &p {x: 1}\nother: *p\n", "s.yaml");
  ASSERT_TRUE(doc.has_value());
  EXPECT_EQ(doc->value["other"]["x"], 1);
}

TEST(ParseYaml, RejectsDuplicateKeysWithLine) {
  auto doc = ParseYaml("a: 1\nb: 2\na: 3\n", "s.yaml");
  ASSERT_FALSE(doc.has_value());
  EXPECT_EQ(doc.error().message(), "s.yaml:3: duplicate key 'a'");
}

TEST(ParseYaml, SyntaxErrorHasLine) {
  auto doc = ParseYaml("a: 1\nb: [1, 2\n", "s.yaml");
  ASSERT_FALSE(doc.has_value());
  EXPECT_EQ(doc.error().message().rfind("s.yaml:", 0), 0u);
  EXPECT_NE(doc.error().message().find("invalid YAML"), std::string::npos);
}

TEST(FieldReader, ReportsWrongTypesAndUnknownKeysWithLines) {
  auto doc = ParseYaml("version: two\ngeneration:\n  temperature: hot\nbogus: 1\n", "s.yaml");
  ASSERT_TRUE(doc.has_value());
  FieldReader r(doc->value, doc->source);
  auto v = r.OptInt("version");
  ASSERT_FALSE(v.has_value());
  EXPECT_EQ(v.error().message(), "s.yaml:1: field 'version' must be an integer, not a string");
  auto gen = r.OptObject("generation");
  ASSERT_TRUE(gen.has_value() && gen->has_value());
  auto params = ReadGenerationParams(**gen);
  ASSERT_FALSE(params.has_value());
  EXPECT_EQ(params.error().message(),
            "s.yaml:3: field 'generation.temperature' must be a number, not a string");
  Status finish = r.Finish();
  EXPECT_EQ(finish.message(), "s.yaml:4: field 'bogus' is not a known setting");
}

TEST(FieldReader, StringListElementErrorsNameTheIndex) {
  auto doc = ParseYaml("stop:\n  - a\n  - 3\n", "s.yaml");
  ASSERT_TRUE(doc.has_value());
  FieldReader r(doc->value, doc->source);
  auto list = r.OptStringList("stop");
  ASSERT_FALSE(list.has_value());
  EXPECT_EQ(list.error().message(), "s.yaml:3: field 'stop[1]' must be a string, not a number");
}

TEST(GenerationParams, RangeChecksAndMerge) {
  auto doc = ParseYaml("temperature: 3\n", "g.yaml");
  FieldReader r(doc->value, doc->source);
  auto p = ReadGenerationParams(r);
  ASSERT_FALSE(p.has_value());
  EXPECT_EQ(p.error().message(), "g.yaml:1: field 'temperature' must be between 0 and 2");

  GenerationParams base;
  base.temperature = 0;
  base.max_tokens = 100;
  GenerationParams over;
  over.max_tokens = 20;
  GenerationParams merged = base.MergedWith(over);
  EXPECT_EQ(merged.ToJson().dump(), R"({"max_tokens":20,"temperature":0.0})");
}

}  // namespace
}  // namespace plumb
