// CSV reading (RFC 4180), shared by the item formats and the replay backend.
#ifndef PLUMB_CSV_H_
#define PLUMB_CSV_H_

#include <string>
#include <string_view>
#include <vector>

#include "plumb/result.h"

namespace plumb {

// One CSV row and the line it starts on (1-based).
struct CsvRow {
  int line = 0;
  std::vector<std::string> fields;
};

// Parses `delimiter`-separated fields with double quotes, "" escapes, newlines inside quotes,
// and LF or CRLF line ends. Lines starting with `comment` (0: none) before the first row are
// skipped, and so are blank lines. Errors (an unterminated quote, text after a closing quote)
// name file:line.
Result<std::vector<CsvRow>> ParseCsv(std::string_view text, const std::string& file,
                                     char delimiter = ',', char comment = 0);

}  // namespace plumb

#endif  // PLUMB_CSV_H_
