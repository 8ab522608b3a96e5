// Graders turn one model reply into a Grade. Rule graders are pure functions of their inputs.
#ifndef PLUMB_GRADER_H_
#define PLUMB_GRADER_H_

#include <memory>
#include <string>
#include <vector>

#include "plumb/json.h"
#include "plumb/registry.h"
#include "plumb/result.h"
#include "plumb/types.h"

namespace plumb {

// Everything a grader may look at for one reply.
struct GradeInput {
  const Item& item;
  // The option texts in the order the model saw them, when the item has options.
  const std::vector<std::string>& options;
  const std::vector<std::string>& labels;  // the labels shown with them ("A", "B", ...)
  const Completion& completion;
};

// A rule grader. Thread-safe and stateless after construction.
class Grader {
 public:
  virtual ~Grader() = default;
  Grader() = default;
  Grader(const Grader&) = delete;
  Grader& operator=(const Grader&) = delete;

  // Id and version recorded with every grade, e.g. "choice@1".
  virtual std::string Id() const = 0;
  // An error Status means the grader could not decide (recorded as a grader error, never a
  // score). Not being able to parse an answer is not an error: it is a grade with a label.
  virtual Result<::plumb::Grade> Grade(const GradeInput& input) const = 0;
};

// Configuration of a grader: its settings object (read strictly) in some manifest.
struct GraderContext {
  FieldReader* config = nullptr;  // not owned; may be nullptr for defaults
};

using GraderRegistry = Registry<Grader, GraderContext>;

// Adds the built-in grader kinds: choice (answer-letter parsing), refusal, regex.
void RegisterBuiltinGraders(GraderRegistry& registry);

}  // namespace plumb

#endif  // PLUMB_GRADER_H_
