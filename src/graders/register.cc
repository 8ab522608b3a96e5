// The one list of built-in grader kinds.
#include "graders/graders.h"

namespace plumb {

void RegisterBuiltinGraders(GraderRegistry& registry) {
  registry.Register("choice", "finds the chosen option label in a reply (ordered answer patterns)",
                    graders::MakeChoiceGrader);
  registry.Register("refusal", "detects refusals by phrase (case-insensitive substrings)",
                    graders::MakeRefusalGrader);
  registry.Register("regex", "scores 1 when a regular expression matches the reply, else 0",
                    graders::MakeRegexGrader);
}

}  // namespace plumb
