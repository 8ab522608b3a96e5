// format: em-yaml, the question files of Emergent Misalignment (Betley et al. 2025): a YAML list
// of {id, type, paraphrases, system?, samples_per_paraphrase, judge, judge_prompts}, with
// anchors, aliases and block scalars. Each paraphrase becomes one item (id, or id#k when a
// question has several); the judge settings travel with the item for the judged suite kinds.
#include <fmt/format.h>

#include "suites/formats.h"

namespace plumb::suites {

Result<std::vector<Record>> ReadEmYaml(const FormatContext& ctx) {
  PLUMB_ASSIGN_OR_RETURN(Document doc, LoadYamlFile(ctx.file));
  const std::string file = ctx.file.string();
  if (!doc.value.is_array()) return InvalidArgument(file + ": expected a YAML list of questions");
  std::vector<Record> out;
  for (size_t q = 0; q < doc.value.size(); ++q) {
    const Json& entry = doc.value[q];
    std::string pointer = "/" + std::to_string(q);
    if (!entry.is_object())
      return InvalidArgument(doc.source.Where(pointer) + ": each question must be a mapping");
    FieldReader r(entry, doc.source, pointer, fmt::format("[{}]", q));
    PLUMB_ASSIGN_OR_RETURN(std::string id, r.String("id"));
    PLUMB_ASSIGN_OR_RETURN(std::string type, r.String("type"));
    PLUMB_ASSIGN_OR_RETURN(auto paraphrases, r.OptStringList("paraphrases"));
    if (!paraphrases || paraphrases->empty())
      return r.Error("paraphrases", "must be a non-empty list of strings");
    PLUMB_ASSIGN_OR_RETURN(auto system, r.OptString("system"));
    PLUMB_ASSIGN_OR_RETURN(auto samples, r.OptInt("samples_per_paraphrase"));
    if (samples && *samples < 1) return r.Error("samples_per_paraphrase", "must be 1 or more");
    PLUMB_ASSIGN_OR_RETURN(auto judge, r.OptString("judge"));
    PLUMB_ASSIGN_OR_RETURN(auto judge_prompts, r.OptObject("judge_prompts"));
    Json prompts = Json::object();
    if (judge_prompts) {
      for (const auto& [metric, _] : judge_prompts->object().items()) {
        PLUMB_ASSIGN_OR_RETURN(prompts[metric], judge_prompts->String(metric));
      }
    }
    PLUMB_RETURN_IF_ERROR(r.Finish());
    int line = doc.source.Line(pointer);
    for (size_t k = 0; k < paraphrases->size(); ++k) {
      Json item = {{"id", paraphrases->size() == 1 ? id : fmt::format("{}#{}", id, k)},
                   {"category", type},
                   {"prompt", (*paraphrases)[k]},
                   {"metadata", {{"question_id", id}, {"type", type}, {"paraphrase", k}}}};
      if (system) item["system"] = *system;
      if (samples) item["samples"] = *samples;
      if (judge) item["judge"] = *judge;
      if (!prompts.empty()) item["judge_prompts"] = prompts;
      out.push_back(Record{std::move(item), SourceMap(file, line), line});
    }
  }
  return out;
}

}  // namespace plumb::suites
