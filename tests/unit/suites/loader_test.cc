// Loading suites: manifest keys, item files, field mapping, errors with file:line.
#include <gtest/gtest.h>

#include "plumb/suite.h"
#include "subprocess.h"

namespace plumb {
namespace {

using testing::TempDir;

class LoaderTest : public ::testing::Test {
 protected:
  LoaderTest() {
    RegisterBuiltinSuiteKinds(kinds);
    RegisterBuiltinGraders(graders);
  }
  // Writes <tmp>/<id>/suite.yaml and items.jsonl and loads the suite.
  Result<Suite> Load(const std::string& manifest, const std::string& items,
                     const std::string& id = "demo") {
    manifest_path = tmp.Write(id + "/suite.yaml", manifest);
    items_path = tmp.Write(id + "/items.jsonl", items);
    return LoadSuite(manifest_path, kinds, graders);
  }
  SuiteKindRegistry kinds{"suite kind"};
  GraderRegistry graders{"grader kind"};
  TempDir tmp;
  std::string manifest_path, items_path;
};

const char* kItems =
    R"({"id": "q1", "category": "c1", "prompt": "P1?", "options": ["a", "b"], "aligned": "B"})"
    "\n"
    R"({"id": "q2", "category": "c2", "prompt": "P2?", "options": ["a", "b", "c"], "aligned": 0})"
    "\n";

TEST_F(LoaderTest, LoadsAValidSuite) {
  auto s = Load(
      "id: demo\nversion: 3\nkind: choice\ntitle: Demo\nsamples: 4\ngeneration:\n  temperature: "
      "0\n",
      kItems);
  ASSERT_TRUE(s.has_value()) << s.error().message();
  EXPECT_EQ(s->manifest.version, 3);
  EXPECT_EQ(s->manifest.samples, 4);
  ASSERT_EQ(s->items.size(), 2u);
  EXPECT_EQ(s->items[0].fields["aligned"], Json::array({1}));
  EXPECT_EQ(s->items[1].fields["aligned"], Json::array({0}));
  EXPECT_EQ(s->items[1].line, 2);
  EXPECT_EQ(s->manifest.content_hash.size(), 64u);
  EXPECT_EQ(*s->manifest.generation.temperature, 0);
}

TEST_F(LoaderTest, ContentHashFollowsTheData) {
  auto a = Load("id: demo\nkind: choice\n", kItems);
  auto b = Load("id: demo\nkind: choice\n", std::string(kItems) + "\n");
  ASSERT_TRUE(a.has_value() && b.has_value());
  EXPECT_NE(a->manifest.content_hash, b->manifest.content_hash);
}

TEST_F(LoaderTest, UnknownManifestKeyNamesLine) {
  auto s = Load("id: demo\nkind: choice\nshufle: true\n", kItems);
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().message(), manifest_path + ":3: field 'shufle' is not a known setting");
}

TEST_F(LoaderTest, IdMustMatchFolder) {
  auto s = Load("id: other\nkind: choice\n", kItems);
  EXPECT_EQ(s.error().message(),
            manifest_path + ":1: field 'id' 'other' must equal the suite's folder name 'demo'");
}

TEST_F(LoaderTest, UnknownKindSuggests) {
  auto s = Load("id: demo\nkind: choise\n", kItems);
  EXPECT_EQ(
      s.error().message(),
      manifest_path +
          ":2: field 'kind' unknown suite kind 'choise' (did you mean 'choice'?); known: "
          "agency, agentic, choice, contrast, misalignment, opinion, paired_choice, pushback");
}

TEST_F(LoaderTest, MalformedJsonlLineNamesFileAndLine) {
  auto s = Load("id: demo\nkind: choice\n", std::string(kItems) + "{\"id\": \"q3\", \n");
  ASSERT_FALSE(s.has_value());
  EXPECT_EQ(s.error().message().rfind(items_path + ":3: invalid JSON: ", 0), 0u)
      << s.error().message();
}

TEST_F(LoaderTest, DuplicateIdsAreErrors) {
  auto s = Load("id: demo\nkind: choice\n",
                std::string(kItems) +
                    R"({"id": "q1", "prompt": "x", "options": ["a", "b"], "aligned": "A"})"
                    "\n");
  EXPECT_EQ(s.error().message(), items_path + ":3: field 'id' 'q1' is a duplicate");
}

TEST_F(LoaderTest, ItemFieldErrorsNameFieldAndLine) {
  auto s = Load("id: demo\nkind: choice\n",
                R"({"id": "q1", "prompt": "x", "options": ["a"], "aligned": "A"})"
                "\n");
  EXPECT_EQ(s.error().message(),
            items_path + ":1: field 'options' must be a list of 2 or more strings");
  s = Load("id: demo\nkind: choice\n",
           R"({"id": "q1", "prompt": "x", "options": ["a", "b"], "aligned": "C"})"
           "\n");
  EXPECT_EQ(s.error().message(),
            items_path + ":1: field 'aligned' refers to option \"C\" but the item has 2 options");
  s = Load("id: demo\nkind: choice\n",
           R"({"id": "q1", "prompt": "x", "options": ["a", "b"], "aligned": "A", "answer": 1})"
           "\n");
  EXPECT_EQ(
      s.error().message(),
      items_path +
          ":1: field 'answer' is not a known item field (known: prompt, messages, "
          "options, aligned, paraphrases, id, category, metadata, scored, samples; map fields "
          "under 'fields:' "
          "in suite.yaml, "
          "or set 'extra_fields: metadata' or 'ignore')");
}

TEST_F(LoaderTest, FieldMappingReadsUserData) {
  auto s = Load(
      "id: demo\nkind: choice\nfields:\n  id: qid\n  prompt: /q/text\n  options: choices\n"
      "  aligned: answer\n  category: subject\nextra_fields: metadata\n",
      R"({"qid": 7, "q": {"text": "Which?"}, "choices": ["x", "y"], "answer": 1, "subject": "s", "difficulty": "hard"})"
      "\n");
  ASSERT_TRUE(s.has_value()) << s.error().message();
  const Item& item = s->items[0];
  EXPECT_EQ(item.id, "7");
  EXPECT_EQ(item.category, "s");
  EXPECT_EQ(item.fields["prompt"], "Which?");
  EXPECT_EQ(item.fields["aligned"], Json::array({1}));
  EXPECT_EQ(item.metadata["difficulty"], "hard");
  EXPECT_FALSE(item.metadata.contains("q"));

  auto bad = Load("id: demo\nkind: choice\nfields:\n  answer: x\n", kItems);
  EXPECT_EQ(bad.error().message(),
            manifest_path +
                ":4: field 'fields.answer' is not an item field of this kind (known: "
                "id, category, metadata, scored, samples, prompt, messages, options, aligned, paraphrases)");
  auto mapped_error = Load("id: demo\nkind: choice\nfields:\n  options: choices\n",
                           R"({"id": "q1", "prompt": "x", "choices": "a", "aligned": "A"})"
                           "\n");
  EXPECT_EQ(mapped_error.error().message(),
            items_path + ":1: field 'choices' must be a list of 2 or more strings");
}

TEST_F(LoaderTest, TemplateErrorsAreCaughtAtLoad) {
  auto s = Load("id: demo\nkind: choice\ntemplate: \"{prompt} {choices}\"\n", kItems);
  EXPECT_EQ(s.error().message(),
            manifest_path +
                ":3: field 'template': unknown placeholder '{choices}' (known: "
                "{prompt}, {options}, {labels}, {n})");
  auto r = Load("id: demo\nkind: choice\nanswer_patterns:\n  - regex: \"(unclosed\"\n", kItems);
  EXPECT_NE(r.error().message().find(
                "field 'answer_patterns[0].regex' is not a valid regular expression"),
            std::string::npos)
      << r.error().message();
}

TEST_F(LoaderTest, MissingDataFile) {
  manifest_path = tmp.Write("demo/suite.yaml", "id: demo\nkind: choice\ndata: nope.jsonl\n");
  auto s = LoadSuite(manifest_path, kinds, graders);
  EXPECT_EQ(s.error().code(), StatusCode::kNotFound);
  EXPECT_EQ(s.error().message(), manifest_path +
                                     ":3: field 'data' names 'nope.jsonl', which cannot be "
                                     "opened (" +
                                     tmp.path() + "/demo/nope.jsonl)");
}

TEST_F(LoaderTest, DiscoverFindsSuiteFolders) {
  ASSERT_TRUE(Load("id: demo\nkind: choice\n", kItems).has_value());
  tmp.Write("not-a-suite/readme.txt", "x");
  auto refs = DiscoverSuites({tmp.path()});
  ASSERT_TRUE(refs.has_value());
  ASSERT_EQ(refs->size(), 1u);
  EXPECT_EQ((*refs)[0].id, "demo");
  auto twice = DiscoverSuites({tmp.path(), tmp.path()});
  EXPECT_FALSE(twice.has_value());
}

}  // namespace
}  // namespace plumb

namespace plumb {
namespace {

// issue 11: reproductions select a subset of a published file and honour its sample counts.
TEST_F(LoaderTest, Issue11SelectKeepsMatchingItemsAndRefusesPatternsThatMatchNothing) {
  const char* items = R"({"id": "q1", "prompt": "P1?", "options": ["a", "b"], "aligned": "B"})"
                      "\n"
                      R"({"id": "q2", "prompt": "P2?", "options": ["a", "b"], "aligned": "A"})"
                      "\n"
                      R"({"id": "x3", "prompt": "P3?", "options": ["a", "b"], "aligned": "A"})"
                      "\n";
  auto s = Load("id: demo\nkind: choice\nselect: [x3, 'q*']\n", items);
  ASSERT_TRUE(s.has_value()) << s.error().message();
  ASSERT_EQ(s->items.size(), 3u);
  s = Load("id: demo\nkind: choice\nselect: [q2]\n", items);
  ASSERT_TRUE(s.has_value()) << s.error().message();
  ASSERT_EQ(s->items.size(), 1u);
  EXPECT_EQ(s->items[0].id, "q2");
  EXPECT_EQ(s->items[0].record, 0u);  // --limit counts what was selected
  auto none = Load("id: demo\nkind: choice\nselect: [q2, 'z*']\n", items);
  ASSERT_FALSE(none.has_value());
  EXPECT_EQ(none.error().message(), manifest_path + ":3: field 'select[1]' ('z*') matches no item");
}

TEST_F(LoaderTest, Issue11ItemSamplesAreReadAndChecked) {
  auto s =
      Load("id: demo\nkind: choice\nitem_samples: true\n",
           R"({"id": "q1", "prompt": "P1?", "options": ["a", "b"], "aligned": "B", "samples": 3})"
           "\n");
  ASSERT_TRUE(s.has_value()) << s.error().message();
  EXPECT_TRUE(s->manifest.item_samples);
  EXPECT_EQ(s->items[0].samples, 3);
  auto bad =
      Load("id: demo\nkind: choice\n",
           R"({"id": "q1", "prompt": "P1?", "options": ["a", "b"], "aligned": "B", "samples": 0})"
           "\n");
  ASSERT_FALSE(bad.has_value());
  EXPECT_EQ(bad.error().message(),
            items_path + ":1: field 'samples' must be a whole number from 1 to 100000");
}

}  // namespace
}  // namespace plumb
