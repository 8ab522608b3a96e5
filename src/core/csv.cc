// RFC 4180 CSV reading. Written by hand: none of the Debian-packaged libraries plumb builds on
// reads CSV, and the dialect needed is small (quotes, "" escapes, newlines inside quotes, CRLF,
// leading comment lines).
#include "plumb/csv.h"

#include <fmt/format.h>

#include "plumb/text.h"

namespace plumb {

Result<std::vector<CsvRow>> ParseCsv(std::string_view text, const std::string& file, char delimiter,
                                     char comment) {
  std::vector<CsvRow> rows;
  size_t i = 0;
  int line = 1;
  bool header_seen = false;
  if (text.substr(0, 3) == "\xEF\xBB\xBF") i = 3;  // UTF-8 byte order mark
  while (i < text.size()) {
    if (!header_seen && comment != 0 && text[i] == comment) {  // comment lines before the header
      size_t end = text.find('\n', i);
      i = end == std::string_view::npos ? text.size() : end + 1;
      ++line;
      continue;
    }
    CsvRow row;
    row.line = line;
    std::string field;
    bool in_quotes = false, quoted = false, done = false;
    while (!done) {
      if (i >= text.size()) {
        if (in_quotes) {
          return InvalidArgument(fmt::format("{}:{}: unterminated quoted field", file, row.line));
        }
        row.fields.push_back(std::move(field));
        break;
      }
      char c = text[i];
      if (in_quotes) {
        if (c == '"' && i + 1 < text.size() && text[i + 1] == '"') {
          field += '"';
          i += 2;
        } else if (c == '"') {
          in_quotes = false;
          ++i;
        } else {
          if (c == '\n') ++line;
          if (!(c == '\r' && i + 1 < text.size() && text[i + 1] == '\n')) field += c;
          ++i;
        }
        continue;
      }
      if (c == '"') {
        if (!field.empty() || quoted) {
          return InvalidArgument(
              fmt::format("{}:{}: stray '\"' inside an unquoted field", file, line));
        }
        in_quotes = quoted = true;
        ++i;
      } else if (c == delimiter) {
        row.fields.push_back(std::move(field));
        field.clear();
        quoted = false;
        ++i;
      } else if (c == '\r' || c == '\n') {
        row.fields.push_back(std::move(field));
        i += (c == '\r' && i + 1 < text.size() && text[i + 1] == '\n') ? 2 : 1;
        ++line;
        done = true;
      } else if (quoted) {
        return InvalidArgument(fmt::format("{}:{}: text after a closing quote", file, line));
      } else {
        field += c;
        ++i;
      }
    }
    bool blank = row.fields.size() == 1 && row.fields[0].empty();
    for (size_t c = 0; c < row.fields.size() && !blank; ++c) {
      std::string where = DescribeInvalidUtf8(row.fields[c]);
      if (where.empty()) continue;
      std::string column = !rows.empty() && c < rows[0].fields.size()
                               ? fmt::format("column '{}'", QuoteInput(rows[0].fields[c], 60))
                               : fmt::format("column {}", c + 1);
      return InvalidArgument(
          fmt::format("{}:{}: {} is not valid UTF-8 ({} of the value); save the file as UTF-8",
                      file, row.line, column, where));
    }
    if (!blank) rows.push_back(std::move(row));
    header_seen = header_seen || !blank;
  }
  return rows;
}

}  // namespace plumb
