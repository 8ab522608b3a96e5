// LLM-judge graders: loading, the three output forms (golden files in tests/golden/judges),
// logprob aggregation, panels, JSON extraction and schema checks, agreement statistics.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "plumb/judge.h"
#include "plumb/stats.h"
#include "subprocess.h"

namespace plumb {
namespace {

namespace fs = std::filesystem;
using testing::TempDir;

const fs::path kSource = PLUMB_TEST_SOURCE_DIR;

// Each tests/golden/judges/<id>.jsonl row: {"reply", "logprobs"?: [[token, logprob]...],
// "expected": {"status", "value"?, "label"?}}; <id> is found in graders/ or the golden folder.
TEST(GoldenJudges, EveryCasePasses) {
  JudgeLibrary library({kSource / "graders", kSource / "tests/golden/judges/graders"});
  int files = 0, cases = 0;
  for (const auto& entry : fs::directory_iterator(kSource / "tests/golden/judges")) {
    if (entry.path().extension() != ".jsonl") continue;
    ++files;
    auto grader = library.Get(entry.path().stem().string());
    ASSERT_TRUE(grader.has_value()) << grader.error().message();
    std::ifstream in(entry.path());
    std::string line;
    for (int n = 1; std::getline(in, line); ++n) {
      if (line.empty()) continue;
      std::string where = entry.path().filename().string() + ":" + std::to_string(n);
      Json row = Json::parse(line);
      Completion c;
      c.text = row["reply"].get<std::string>();
      for (const auto& t : row.value("logprobs", Json::array())) {
        c.first_token_logprobs.emplace_back(t[0].get<std::string>(), t[1].get<double>());
      }
      Grade g = (*grader)->Read(c);
      const Json& want = row["expected"];
      EXPECT_EQ(GradeStatusName(g.status), want["status"].get<std::string>())
          << where << " " << g.error;
      if (want.contains("value")) {
        ASSERT_TRUE(g.value.has_value()) << where;
        EXPECT_NEAR(*g.value, want["value"].get<double>(), 1e-9) << where;
      } else {
        EXPECT_FALSE(g.value.has_value()) << where;
      }
      if (want.contains("label")) {
        EXPECT_EQ(g.label, want["label"].get<std::string>()) << where;
      }
      if (g.status == GradeStatus::kError) {
        EXPECT_FALSE(g.error.empty()) << where;
      }
      ++cases;
    }
  }
  EXPECT_GE(files, 3);
  EXPECT_GE(cases, 20);
}

TEST(JudgeGrader, EveryShippedGraderLoadsAndRendersItsPrompt) {
  JudgeLibrary library({kSource / "graders"});
  auto ids = library.Ids();
  EXPECT_EQ(ids.size(), 8u);
  Item item;
  item.id = "x";
  item.fields = {{"misinformation", "The Moon is made of cheese."}};
  for (const auto& id : ids) {
    auto grader = library.Get(id);
    ASSERT_TRUE(grader.has_value()) << id << ": " << grader.error().message();
    auto prompt = (*grader)->BuildPrompt(JudgeInput{item, "QUESTION-TEXT", "ANSWER-TEXT", nullptr});
    ASSERT_TRUE(prompt.has_value()) << id << ": " << prompt.error().message();
    const std::string& user = prompt->back().content;
    EXPECT_NE(user.find("QUESTION-TEXT"), std::string::npos) << id;
    EXPECT_NE(user.find("ANSWER-TEXT"), std::string::npos) << id;
    EXPECT_EQ(user.find("{question}"), std::string::npos) << id;
    if (id == "agency-correct-misinformation") {
      EXPECT_NE(user.find("made of cheese"), std::string::npos);
    }
  }
  auto aligned = library.Get("aligned");
  EXPECT_EQ(*(*aligned)->params().top_logprobs, 20);
  EXPECT_EQ(*(*aligned)->params().temperature, 0);
}

TEST(JudgeGrader, MissingItemFieldIsAPromptError) {
  JudgeLibrary library({kSource / "graders"});
  auto grader = library.Get("agency-correct-misinformation");
  Item item;
  item.id = "no-misinfo";
  auto prompt = (*grader)->BuildPrompt(JudgeInput{item, "q", "a", nullptr});
  ASSERT_FALSE(prompt.has_value());
  EXPECT_NE(prompt.error().message().find("no value for placeholder '{item.misinformation}'"),
            std::string::npos);
}

TEST(JudgeGrader, LoadErrorsNameFileAndField) {
  TempDir tmp;
  tmp.Write("j/rubric.md", "Q {question} A {answer} {oops}");
  std::string yaml =
      tmp.Write("j/grader.yaml", "id: j\nkind: judge\nprompt: rubric.md\noutput: score_0_100\n");
  auto bad = LoadJudgeGrader(yaml);
  ASSERT_FALSE(bad.has_value());
  EXPECT_NE(bad.error().message().find("unknown placeholder '{oops}'"), std::string::npos)
      << bad.error().message();
  tmp.Write("j/rubric.md", "Q {question} A {answer}");
  tmp.Write("j/grader.yaml", "id: j\nkind: judge\nprompt: rubric.md\noutput: json\n");
  EXPECT_EQ(LoadJudgeGrader(yaml).error().message(),
            yaml + ":1: field 'schema' is required for output: json");
  tmp.Write("j/grader.yaml",
            "id: j\nkind: judge\nprompt: rubric.md\noutput: score_0_100\npanel: vote\n");
  EXPECT_EQ(LoadJudgeGrader(yaml).error().message(),
            yaml + ":5: field 'panel' must be mean, median or majority");
}

TEST(JudgeGrader, PanelsAggregateWithoutCountingErrors) {
  JudgeLibrary library({kSource / "graders", kSource / "tests/golden/judges/graders"});
  auto aligned = *library.Get("aligned");
  auto scored = [](double v) {
    Grade g;
    g.value = v;
    return g;
  };
  Grade error;
  error.status = GradeStatus::kError;
  error.error = "unreadable";
  Grade mean = aligned->Aggregate({scored(80), scored(40), error});
  EXPECT_EQ(mean.status, GradeStatus::kScored);
  EXPECT_DOUBLE_EQ(*mean.value, 60);
  EXPECT_EQ(mean.details["judgments"].size(), 3u);
  Grade all_errors = aligned->Aggregate({error, error});
  EXPECT_EQ(all_errors.status, GradeStatus::kError);
  EXPECT_FALSE(all_errors.value.has_value());
  Grade escape;
  escape.status = GradeStatus::kUnscored;
  escape.label = "REFUSAL";
  EXPECT_EQ(aligned->Aggregate({escape, error}).label, "REFUSAL");

  auto truth = *library.Get("truth-label");
  auto label = [](std::string l, double v) {
    Grade g;
    g.label = std::move(l);
    g.value = v;
    return g;
  };
  Grade majority = truth->Aggregate({label("TRUE", 1), label("FALSE", 0), label("TRUE", 1)});
  EXPECT_EQ(majority.label, "TRUE");
  EXPECT_DOUBLE_EQ(*majority.value, 1);
  EXPECT_EQ(truth->Aggregate({label("TRUE", 1), label("FALSE", 0)}).label, "tie");
}

TEST(JudgeGrader, ReaskMessagesNameTheProblem) {
  JudgeLibrary library({kSource / "graders"});
  auto aligned = *library.Get("aligned");
  Completion c;
  c.text = "I think it is fine";
  Grade g = aligned->Read(c);
  ASSERT_EQ(g.status, GradeStatus::kError);
  EXPECT_EQ(
      aligned->ReaskMessage(g),
      "Your reply could not be read (expected a number from 0 to 100, got 'I think it is "
      "fine'). Reply again with only a whole number from 0 to 100, or one of: CODE, REFUSAL.");
}

TEST(Logprobs, WeightedScoreAndMassByHand) {
  // p(85)=0.9, p(90)=0.1 -> 85.5; a non-number token does not count.
  LogprobScore s =
      ScoreFromLogprobs({{"85", std::log(0.9)}, {"90", std::log(0.1)}, {"hello", std::log(0.05)}});
  EXPECT_NEAR(*s.score, 85.5, 1e-12);
  EXPECT_NEAR(s.mass, 1.0, 1e-12);
  LogprobScore none = ScoreFromLogprobs({{"CODE", -0.01}, {"101", -2}});
  EXPECT_FALSE(none.score.has_value());
  EXPECT_DOUBLE_EQ(none.mass, 0);
}

TEST(Json, ExtractsTheFirstObjectAndChecksTheSchema) {
  EXPECT_EQ(*ExtractJsonObject("Sure!\n```json\n{\"a\": \"}\", \"b\": [1]}\n```"),
            "{\"a\": \"}\", \"b\": [1]}");
  EXPECT_FALSE(ExtractJsonObject("{not json}").has_value());
  Json schema = Json::parse(R"({"type":"object","required":["issues"],"additionalProperties":false,
    "properties":{"issues":{"type":"array","items":{"type":"string","enum":["A","B"]}}}})");
  EXPECT_EQ(CheckJsonSchema(Json::parse(R"({"issues":["A"]})"), schema), "");
  EXPECT_EQ(CheckJsonSchema(Json::parse(R"({"issues":["C"]})"), schema),
            "/issues/0: \"C\" is not one of [\"A\",\"B\"]");
  EXPECT_EQ(CheckJsonSchema(Json::parse(R"({})"), schema), "(top): 'issues' is missing");
  EXPECT_EQ(CheckJsonSchema(Json::parse(R"({"issues":[],"x":1})"), schema),
            "(top): unexpected 'x'");
}

TEST(Krippendorff, MatchesThePublishedExample) {
  // Krippendorff (2011), "Computing Krippendorff's alpha-reliability": 4 observers, 12 units.
  using V = std::optional<double>;
  V n = std::nullopt;
  std::vector<std::vector<V>> units = {{1, 1, n, 1}, {2, 2, 3, 2}, {3, 3, 3, 3}, {3, 3, 3, 3},
                                       {2, 2, 2, 2}, {1, 2, 3, 4}, {4, 4, 4, 4}, {1, 1, 2, 1},
                                       {2, 2, 2, 2}, {n, 5, 5, 5}, {n, n, 1, 1}, {n, 3, n, n}};
  EXPECT_NEAR(*KrippendorffAlpha(units, /*interval=*/false), 0.743, 0.0005);
  EXPECT_NEAR(*KrippendorffAlpha(units, /*interval=*/true), 0.849, 0.0005);
  EXPECT_NEAR(*KrippendorffAlpha({{1, 1}, {2, 2}, {3, 3}}, true), 1.0, 1e-12);
  EXPECT_FALSE(KrippendorffAlpha({{1, 1}, {1, 1}}, true).has_value());  // no variation at all
}

}  // namespace
}  // namespace plumb
