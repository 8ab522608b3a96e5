// builtin/option-only: the answer-only baseline that never sees the question. A naive Bayes
// classifier over the options' words, trained leave-one-item-out on the suite's own items
// (aligned options against the others), picks the option whose words look most like an aligned
// option's; its reply goes through the suite's grading like a model's. A suite where it scores
// far above chance rewards recognising the aligned option's style. docs/statistics.md,
// "Answer-only baselines". Internal to the runner (it needs the suite, so it is not in the
// backend registry).
#ifndef PLUMB_RUNNER_OPTION_ONLY_H_
#define PLUMB_RUNNER_OPTION_ONLY_H_

#include <memory>
#include <string>
#include <vector>

#include "plumb/backend.h"
#include "plumb/suite.h"

namespace plumb::runner {

inline constexpr const char* kOptionOnlySpec = "builtin/option-only";

// The tokens of an option: ASCII letters and digits, lower-cased, in runs; everything else
// separates them.
std::vector<std::string> OptionTokens(const std::string& text);

// The baseline for `suite`, or null when no item has an aligned option to learn from.
std::unique_ptr<Backend> MakeOptionOnlyBaseline(const Suite& suite);

}  // namespace plumb::runner

#endif  // PLUMB_RUNNER_OPTION_ONLY_H_
