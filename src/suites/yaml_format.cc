// format: yaml, a YAML list of item mappings (for items with multi-line text, such as agents'
// environments). Anchors and aliases are resolved; every field keeps its own line.
#include <fmt/format.h>

#include "suites/formats.h"

namespace plumb::suites {

Result<std::vector<Record>> ReadYamlItems(const FormatContext& ctx) {
  PLUMB_ASSIGN_OR_RETURN(Document doc, LoadYamlFile(ctx.file));
  if (!doc.value.is_array()) {
    return InvalidArgument(fmt::format("{}: expected a YAML list of items", ctx.file.string()));
  }
  std::vector<Record> out;
  for (size_t i = 0; i < doc.value.size(); ++i) {
    std::string pointer = "/" + std::to_string(i);
    if (!doc.value[i].is_object()) {
      return InvalidArgument(doc.source.Where(pointer) + ": each item must be a mapping");
    }
    out.push_back(
        Record{std::move(doc.value[i]), doc.source.Sub(pointer), doc.source.Line(pointer)});
  }
  return out;
}

}  // namespace plumb::suites
