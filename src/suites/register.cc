// The one list of built-in suite kinds and item file formats.
#include "suites/formats.h"
#include "suites/kinds.h"

namespace plumb {

void RegisterBuiltinSuiteKinds(SuiteKindRegistry& registry) {
  registry.Register("choice", "multiple choice with aligned option(s); aligned-choice rate",
                    suites::MakeChoiceKind);
}

namespace suites {

const std::vector<FormatEntry>& Formats() {
  static const std::vector<FormatEntry> kFormats = {
      {"jsonl", "one JSON object per line, mapped with 'fields:'", ReadJsonl},
  };
  return kFormats;
}

}  // namespace suites
}  // namespace plumb
