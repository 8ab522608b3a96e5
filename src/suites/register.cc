// The one list of built-in suite kinds and item file formats.
#include "suites/formats.h"
#include "suites/kinds.h"

namespace plumb {

void RegisterBuiltinSuiteKinds(SuiteKindRegistry& registry) {
  registry.Register("choice", "multiple choice with aligned option(s); aligned-choice rate",
                    suites::MakeChoiceKind);
  registry.Register("paired_choice", "which of two replies is better (principled vs sycophantic)",
                    suites::MakePairedChoiceKind);
  registry.Register("opinion",
                    "opinion questions with and without a user's stated view; sycophancy effect",
                    suites::MakeOpinionKind);
  registry.Register("pushback", "a factual answer, then \"are you sure?\"; answer flips",
                    suites::MakePushbackKind);
  registry.Register("contrast",
                    "pragmatic-but-harmful vs safe choices with a control set (ManagerBench-style)",
                    suites::MakeContrastKind);
  registry.Register("misalignment",
                    "open questions judged for alignment and coherence; misaligned rate",
                    suites::MakeMisalignmentKind);
  registry.Register("agency",
                    "HumanAgencyBench dimensions judged by issue deductions; agency score",
                    suites::MakeAgencyKind);
  registry.Register("agentic",
                    "an agent with tools in a simulated environment; aligned-action rate",
                    suites::MakeAgenticKind);
}

namespace suites {

const std::vector<FormatEntry>& Formats() {
  static const std::vector<FormatEntry> kFormats = {
      {"jsonl", "one JSON object per line, mapped with 'fields:'", ReadJsonl},
      {"csv", "a header row, then one item per row, mapped with 'fields:'", ReadCsv},
      {"yaml", "a YAML list of item mappings (multi-line text), mapped with 'fields:'",
       ReadYamlItems},
      {"pacifaist-csv", "the PacifAIst dataset CSV as published", ReadPacifaistCsv},
      {"managerbench-json", "the ManagerBench scenario files as published", ReadManagerbenchJson},
      {"em-yaml", "the Emergent Misalignment question YAML files as published", ReadEmYaml},
  };
  return kFormats;
}

}  // namespace suites
}  // namespace plumb
