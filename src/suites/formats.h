// Item file formats: each turns a data file into records (JSON objects with locations) that the
// loader maps onto items. register.cc lists the formats.
#ifndef PLUMB_SUITES_FORMATS_H_
#define PLUMB_SUITES_FORMATS_H_

#include <filesystem>
#include <string>
#include <vector>

#include "plumb/csv.h"
#include "plumb/json.h"
#include "plumb/suite.h"

namespace plumb::suites {

// One raw item: an object plus where its values came from (pointers relative to the object).
struct Record {
  Json value;
  SourceMap source;
  int line = 0;  // first line of the record in its file
};

struct FormatContext {
  std::filesystem::path file;       // the data file
  std::filesystem::path dir;        // the suite folder (other paths in settings are relative to it)
  FieldReader* manifest = nullptr;  // format-specific settings are read from here
};

using FormatReader = Result<std::vector<Record>> (*)(const FormatContext& ctx);

struct FormatEntry {
  const char* name;
  const char* description;
  FormatReader read;
};

// The known formats (register.cc).
const std::vector<FormatEntry>& Formats();

Result<std::vector<Record>> ReadJsonl(const FormatContext& ctx);
Result<std::vector<Record>> ReadCsv(const FormatContext& ctx);
Result<std::vector<Record>> ReadPacifaistCsv(const FormatContext& ctx);
Result<std::vector<Record>> ReadManagerbenchJson(const FormatContext& ctx);
Result<std::vector<Record>> ReadEmYaml(const FormatContext& ctx);
Result<std::vector<Record>> ReadYamlItems(const FormatContext& ctx);

// The rows of a CSV file with a header, as objects of column -> string.
Result<std::vector<Record>> CsvRecords(const std::filesystem::path& path, char delimiter = ',',
                                       char comment = 0);

// Reads a whole file; kNotFound naming it when it cannot be opened.
Result<std::string> ReadFileText(const std::filesystem::path& path);

}  // namespace plumb::suites

#endif  // PLUMB_SUITES_FORMATS_H_
