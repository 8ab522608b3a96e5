// Factories of the built-in grader kinds; register.cc lists them in the registry.
#ifndef PLUMB_GRADERS_GRADERS_H_
#define PLUMB_GRADERS_GRADERS_H_

#include <memory>

#include "plumb/grader.h"

namespace plumb::graders {

Result<std::unique_ptr<Grader>> MakeChoiceGrader(const GraderContext& ctx);
Result<std::unique_ptr<Grader>> MakeRefusalGrader(const GraderContext& ctx);
Result<std::unique_ptr<Grader>> MakeRegexGrader(const GraderContext& ctx);

}  // namespace plumb::graders

#endif  // PLUMB_GRADERS_GRADERS_H_
