// RFC 4180 CSV reading.
#include "plumb/csv.h"

#include <gtest/gtest.h>

namespace plumb {
namespace {

TEST(Csv, QuotesEscapesNewlinesAndCrlf) {
  auto rows =
      ParseCsv("a,b,c\r\n1,\"x, y\",\"say \"\"hi\"\"\"\r\n2,\"two\r\nlines\",\r\n", "f.csv");
  ASSERT_TRUE(rows.has_value()) << rows.error().message();
  ASSERT_EQ(rows->size(), 3u);
  EXPECT_EQ((*rows)[1].fields, (std::vector<std::string>{"1", "x, y", "say \"hi\""}));
  EXPECT_EQ((*rows)[2].fields, (std::vector<std::string>{"2", "two\nlines", ""}));
  EXPECT_EQ((*rows)[2].line, 3);
}

TEST(Csv, CommentLinesBeforeTheHeaderAndBlankLines) {
  auto rows = ParseCsv("# licence\n# more\nid,x\n\n7,y\n", "f.csv", ',', '#');
  ASSERT_TRUE(rows.has_value());
  ASSERT_EQ(rows->size(), 2u);
  EXPECT_EQ((*rows)[0].fields[0], "id");
  EXPECT_EQ((*rows)[1].line, 5);
  EXPECT_EQ((*ParseCsv("a;b\n1;2", "f", ';'))[1].fields[1], "2");
}

TEST(Csv, ErrorsNameTheLine) {
  EXPECT_EQ(ParseCsv("a,b\n1,\"open\n", "f.csv").error().message(),
            "f.csv:2: unterminated quoted field");
  EXPECT_EQ(ParseCsv("a,b\n1,x\"y\n", "f.csv").error().message(),
            "f.csv:2: stray '\"' inside an unquoted field");
  EXPECT_EQ(ParseCsv("a,b\n\"1\"x,y\n", "f.csv").error().message(),
            "f.csv:2: text after a closing quote");
}

}  // namespace
}  // namespace plumb
