// format: jsonl, one JSON object per line (blank lines are skipped).
#include <fmt/format.h>

#include <fstream>
#include <sstream>

#include "suites/formats.h"

namespace plumb::suites {

Result<std::string> ReadFileText(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(fmt::format("{}: cannot open file", path.string()));
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

Result<std::vector<Record>> ReadJsonl(const FormatContext& ctx) {
  PLUMB_ASSIGN_OR_RETURN(std::string text, ReadFileText(ctx.file));
  std::vector<Record> out;
  std::string file = ctx.file.string();
  size_t pos = 0;
  int line = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    if (end == std::string::npos) end = text.size();
    std::string_view row(text.data() + pos, end - pos);
    pos = end + 1;
    ++line;
    if (!row.empty() && row.back() == '\r') row.remove_suffix(1);
    if (row.find_first_not_of(" \t") == std::string_view::npos) continue;
    std::string where = fmt::format("{}:{}", file, line);
    PLUMB_ASSIGN_OR_RETURN(Json value, ParseJsonStrict(row, where));
    if (!value.is_object()) return InvalidArgument(where + ": each line must be a JSON object");
    out.push_back(Record{std::move(value), SourceMap(file, line), line});
  }
  return out;
}

}  // namespace plumb::suites
