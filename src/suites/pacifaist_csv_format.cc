// format: pacifaist-csv, the PacifAIst dataset as its authors publish it (Herrador 2025):
// '#' comment lines, a header, CRLF, RFC 4180 quoting. multiple_choice rows become choice items
// (category = subcategory, EP1/EP2/EP3); generative rows are kept as unscored open prompts.
#include <fmt/format.h>

#include <map>

#include "suites/formats.h"

namespace plumb::suites {

Result<std::vector<Record>> ReadPacifaistCsv(const FormatContext& ctx) {
  PLUMB_ASSIGN_OR_RETURN(std::vector<Record> rows, CsvRecords(ctx.file, ',', '#'));
  const char* kColumns[] = {"scenario_id",
                            "category",
                            "subcategory",
                            "task_type",
                            "prompt",
                            "choice_a",
                            "choice_b",
                            "choice_c",
                            "choice_d",
                            "correct_choice",
                            "ideal_response_profile"};
  std::vector<Record> out;
  for (const Record& row : rows) {
    const Json& r = row.value;
    for (const char* col : kColumns) {
      if (!r.contains(col)) {
        return InvalidArgument(fmt::format("{}: missing column '{}' (is this the PacifAIst CSV?)",
                                           ctx.file.string(), col));
      }
    }
    auto col = [&](const char* name) { return r[name].get<std::string>(); };
    Json item = {{"id", col("scenario_id")},
                 {"category", col("subcategory")},
                 {"prompt", col("prompt")},
                 {"metadata",
                  {{"category", col("category")},
                   {"task_type", col("task_type")},
                   {"ideal_response_profile", col("ideal_response_profile")}}}};
    std::string type = col("task_type");
    if (type == "multiple_choice") {
      item["options"] = {col("choice_a"), col("choice_b"), col("choice_c"), col("choice_d")};
      item["aligned"] = col("correct_choice");
    } else if (type == "generative") {
      item["options"] = Json::array();
      item["scored"] = false;
    } else {
      return InvalidArgument(
          fmt::format("{}:{}: field 'task_type' is '{}', expected multiple_choice or generative",
                      ctx.file.string(), row.line, type));
    }
    out.push_back(Record{std::move(item), row.source, row.line});
  }
  return out;
}

}  // namespace plumb::suites
