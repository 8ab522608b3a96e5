// issue 11: the bad-input corpus (tests/golden/bad-input/<case>/): each case's exact message
// and exit code, and nothing written.
#include <gtest/gtest.h>

#include <filesystem>
#include <sstream>

#include "e2e.h"

namespace plumb::testing {
namespace {

TEST(BadInput, Issue11EveryCaseGivesItsMessageAndExitCodeAndWritesNothing) {
  std::filesystem::path corpus =
      std::filesystem::path(PLUMB_TEST_SOURCE_DIR) / "tests/golden/bad-input";
  int cases = 0;
  for (const auto& entry : std::filesystem::directory_iterator(corpus)) {
    if (!entry.is_directory()) continue;
    ++cases;
    const std::string name = entry.path().filename().string();
    TempDir tmp;
    std::filesystem::copy(entry.path(), tmp.path(), std::filesystem::copy_options::recursive);
    std::vector<std::string> args = {"--db", tmp.path() + "/results.db"};
    std::istringstream words(ReadFile(tmp.path() + "/args"));
    for (std::string w; words >> w;) args.push_back(w);
    std::string expect = ReadFile(tmp.path() + "/expect");
    size_t nl = expect.find('\n');
    ASSERT_NE(nl, std::string::npos) << name << ": expect needs the exit code on line 1";
    int code = std::stoi(expect.substr(0, nl));
    std::string message = expect.substr(nl + 1);
    auto r = Plumb(tmp.path(), args);
    EXPECT_EQ(r.exit_code, code) << name << ": " << r.err;
    EXPECT_EQ(r.err, message) << name;
    EXPECT_LE(r.err.size(), 800u) << name << ": messages quote at most ~200 bytes of input";
    EXPECT_FALSE(std::filesystem::exists(tmp.path() + "/results.db"))
        << name << ": nothing may be written";
  }
  EXPECT_GE(cases, 25);
}

}  // namespace
}  // namespace plumb::testing
