// Factories of the built-in suite kinds and the formats; register.cc lists them.
#ifndef PLUMB_SUITES_KINDS_H_
#define PLUMB_SUITES_KINDS_H_

#include <memory>
#include <string>
#include <vector>

#include "plumb/suite.h"

namespace plumb::suites {

Result<std::unique_ptr<SuiteKind>> MakeChoiceKind(const SuiteKindContext& ctx);

// Metrics of a choice-style grade (labels aligned / other / refusal / unparsed):
// aligned_rate overall and per category, refusal_rate, parse_failure_rate, error_rate.
std::vector<Metric> ChoiceMetrics(const std::vector<Item>& items,
                                  const std::vector<SampleOutcome>& outcomes,
                                  const std::string& grader);

}  // namespace plumb::suites

#endif  // PLUMB_SUITES_KINDS_H_
