// The RE2 wrapper: Python-style inline flags, clear errors for what RE2 leaves out, iteration
// like re.finditer, and long inputs that std::regex could not take.
#include "plumb/regex.h"

#include <gtest/gtest.h>

namespace plumb {
namespace {

TEST(Regex, InlineFlagsWorkAsInPython) {
  auto re = Regex::Compile(R"((?im)^\s*(?:Answer:|Choice:)\s*([A-D]))");
  ASSERT_TRUE(re.has_value()) << re.error().message();
  RegexMatch m;
  ASSERT_TRUE(re->Search("First line\n  answer: c and more", &m));
  EXPECT_EQ(m.groups[0], "c");
  auto dotall = Regex::Compile("(?s)a.b");
  EXPECT_TRUE(dotall->Contains("a\nb"));
  EXPECT_FALSE(Regex::Compile("a.b")->Contains("a\nb"));
}

TEST(Regex, LookaroundAndBackreferencesAreLoadErrorsThatSayWhy) {
  auto look = Regex::Compile("A(?![a-z])");
  ASSERT_FALSE(look.has_value());
  EXPECT_NE(look.error().message().find("lookaround"), std::string::npos) << look.error().message();
  auto back = Regex::Compile(R"((a)\1)");
  ASSERT_FALSE(back.has_value());
  EXPECT_NE(back.error().message().find("backreferences"), std::string::npos)
      << back.error().message();
  EXPECT_EQ(Regex::Compile("(").error().code(), StatusCode::kInvalidArgument);
}

TEST(Regex, ForEachGivesNonOverlappingMatchesAndSurvivesEmptyOnes) {
  auto re = Regex::Compile("[0-9]+");
  std::vector<std::string> found;
  re->ForEach("a1 22 333", [&](const RegexMatch& m) {
    found.emplace_back(m.whole);
    return true;
  });
  EXPECT_EQ(found, (std::vector<std::string>{"1", "22", "333"}));
  int empties = 0;
  Regex::Compile("x*")->ForEach("abc", [&](const RegexMatch&) { return ++empties < 100; });
  EXPECT_EQ(empties, 4);  // before a, b, c and at the end
  EXPECT_EQ(Regex::Compile("b+")->ReplaceAll("abbcb", "-"), "a-c-");
}

TEST(Regex, ContextBeforeTheStartCountsForAnchorsAndWordBoundaries) {
  auto re = Regex::Compile(R"(\bB)");
  RegexMatch m;
  EXPECT_FALSE(re->Search("AB", &m, 1));  // "B" follows a word character
  EXPECT_TRUE(re->Search("A B", &m, 1));
  EXPECT_FALSE(Regex::Compile("^B")->Search("AB", &m, 1));
}

// issue 11: a 2 MB reply through the ManagerBench recipe's pattern crashed std::regex.
TEST(Regex, Issue11MegabyteRepliesThroughBacktrackingShapedPatterns) {
  auto re = Regex::Compile(R"(^(?:[\s\S]*My answer is)?\s*([^.\n]*))");
  ASSERT_TRUE(re.has_value());
  std::string reply(2 << 20, 'x');
  for (size_t i = 0; i < reply.size(); i += 80) reply[i] = '\n';
  reply += "\nMy answer is B. Done.";
  RegexMatch m;
  ASSERT_TRUE(re->Search(reply, &m));
  EXPECT_EQ(m.groups[0], "B");
}

TEST(Regex, QuoteMakesLabelsLiteral) {
  auto re = Regex::Compile(RegexQuote("(a).") + "$");
  EXPECT_TRUE(re->Contains("x(a)."));
  EXPECT_FALSE(re->Contains("xab!"));
}

}  // namespace
}  // namespace plumb
