// Runs every case in tests/golden/graders/<kind>.jsonl through the grader of that kind:
// {"config": {...}?, "labels": [...]?, "options": [...]?, "reply": "...",
//  "expected": {"label": "...", "value": ...}}  (value null = no value).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "plumb/grader.h"

namespace plumb {
namespace {

TEST(GoldenGraders, EveryCasePasses) {
  GraderRegistry registry("grader kind");
  RegisterBuiltinGraders(registry);
  std::filesystem::path dir = std::filesystem::path(PLUMB_TEST_SOURCE_DIR) / "tests/golden/graders";
  int files = 0, cases = 0;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".jsonl") continue;
    ++files;
    std::string kind = entry.path().stem().string();
    ASSERT_TRUE(registry.Contains(kind)) << entry.path() << " names no grader kind";
    std::ifstream in(entry.path());
    std::string line;
    int n = 0;
    while (std::getline(in, line)) {
      ++n;
      if (line.empty()) continue;
      std::string where = entry.path().filename().string() + ":" + std::to_string(n);
      auto row = ParseJsonStrict(line, where);
      ASSERT_TRUE(row.has_value()) << row.error().message();
      Json config = row->value("config", Json::object());
      SourceMap source(where, n);
      FieldReader reader(config, source);
      auto grader = registry.Create(kind, GraderContext{&reader});
      ASSERT_TRUE(grader.has_value()) << where << ": " << grader.error().message();
      ASSERT_TRUE(reader.Finish().ok()) << where;
      std::vector<std::string> labels =
          row->value("labels", std::vector<std::string>{"A", "B", "C", "D"});
      std::vector<std::string> options =
          row->value("options", std::vector<std::string>(labels.size(), "option"));
      Item item;
      item.id = where;
      Completion c;
      c.text = (*row)["reply"].get<std::string>();
      auto grade = (*grader)->Grade(GradeInput{item, options, labels, c});
      ASSERT_TRUE(grade.has_value()) << where;
      const Json& want = (*row)["expected"];
      EXPECT_EQ(grade->label, want["label"].get<std::string>()) << where << ": " << c.text;
      if (want["value"].is_null()) {
        EXPECT_FALSE(grade->value.has_value()) << where;
      } else {
        ASSERT_TRUE(grade->value.has_value()) << where;
        EXPECT_DOUBLE_EQ(*grade->value, want["value"].get<double>()) << where;
      }
      ++cases;
    }
  }
  EXPECT_GE(files, 3);
  EXPECT_GE(cases, 30);
}

}  // namespace
}  // namespace plumb
