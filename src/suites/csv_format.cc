// format: csv (a header row, then one item per row, mapped with `fields:`), and the record
// reader it shares with pacifaist-csv.
#include <fmt/format.h>

#include "plumb/csv.h"
#include "suites/formats.h"

namespace plumb::suites {

Result<std::vector<Record>> CsvRecords(const std::filesystem::path& path, char delimiter,
                                       char comment) {
  PLUMB_ASSIGN_OR_RETURN(std::string text, ReadFileText(path));
  std::string file = path.string();
  PLUMB_ASSIGN_OR_RETURN(auto rows, ParseCsv(text, file, delimiter, comment));
  if (rows.empty()) return InvalidArgument(file + ": no header row");
  const std::vector<std::string>& header = rows[0].fields;
  std::vector<Record> out;
  for (size_t r = 1; r < rows.size(); ++r) {
    const CsvRow& row = rows[r];
    if (row.fields.size() != header.size()) {
      return InvalidArgument(fmt::format("{}:{}: {} fields, but the header has {}", file, row.line,
                                         row.fields.size(), header.size()));
    }
    Json obj = Json::object();
    for (size_t c = 0; c < header.size(); ++c) obj[header[c]] = row.fields[c];
    out.push_back(Record{std::move(obj), SourceMap(file, row.line), row.line});
  }
  return out;
}

Result<std::vector<Record>> ReadCsv(const FormatContext& ctx) {
  char delimiter = ',', comment = 0;
  PLUMB_ASSIGN_OR_RETURN(auto settings, ctx.manifest->OptObject("csv"));
  if (settings) {
    PLUMB_ASSIGN_OR_RETURN(auto d, settings->OptString("delimiter"));
    PLUMB_ASSIGN_OR_RETURN(auto c, settings->OptString("comment"));
    if (d && d->size() != 1) return settings->Error("delimiter", "must be one character");
    if (c && c->size() != 1) return settings->Error("comment", "must be one character");
    if (d) delimiter = (*d)[0];
    if (c) comment = (*c)[0];
    PLUMB_RETURN_IF_ERROR(settings->Finish());
  }
  return CsvRecords(ctx.file, delimiter, comment);
}

}  // namespace plumb::suites
