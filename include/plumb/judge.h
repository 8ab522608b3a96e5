// LLM-judge graders: data under graders/<id>/ (grader.yaml + a prompt template + README). A judge
// grader is two pure steps: build the judge prompt from (item, reply), and turn the judge's
// completion into a judgment. The runner sends judge calls through the same scheduler as the
// model under test, re-asks when a reply cannot be read, and aggregates judge panels.
#ifndef PLUMB_JUDGE_H_
#define PLUMB_JUDGE_H_

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "plumb/result.h"
#include "plumb/types.h"

namespace plumb {

// What a judge looks at.
struct JudgeInput {
  const Item& item;
  std::string question;  // the user's message that was answered
  std::string answer;    // the reply being judged
  // A template that replaces the grader's own (e.g. a published judge prompt stored with the
  // item); nullptr for the grader's.
  const std::string* template_override = nullptr;
};

// One judge grader, loaded from grader.yaml. Immutable and thread-safe.
//
// Every judgment ends in exactly one state: scored (a value), unscored (a declared escape such
// as REFUSAL or CODE, or too little probability mass on numbers) or grader_error (unreadable
// after the allowed re-asks, or the judge call failed). Errors are never scores.
class JudgeGrader {
 public:
  enum class Output { kScore0To100, kJson, kLabels };

  virtual ~JudgeGrader() = default;

  virtual const std::string& id() const = 0;
  virtual int version() const = 0;
  // "aligned@1": recorded as the grader of every judgment.
  std::string IdVersion() const { return id() + "@" + std::to_string(version()); }
  virtual Output output() const = 0;
  // True when judgments are numbers (interval scale) rather than labels (nominal), for
  // agreement statistics.
  virtual bool numeric() const = 0;
  virtual int max_reasks() const = 0;
  // Sampling parameters of judge calls (logprobs and structured output included).
  virtual const GenerationParams& params() const = 0;

  // The judge conversation. kInvalidArgument when the template needs a field the item lacks.
  virtual Result<std::vector<Message>> BuildPrompt(const JudgeInput& input) const = 0;
  // Reads one judge completion. A reply that cannot be read is a Grade with status kError and
  // the reason in `error`; the caller may re-ask with ReaskMessage().
  virtual Grade Read(const Completion& completion) const = 0;
  // The follow-up user message sent after an unreadable reply.
  virtual std::string ReaskMessage(const Grade& unreadable) const = 0;
  // Combines the judgments of a panel (one per judge model; some may be errors) into one.
  virtual Grade Aggregate(const std::vector<Grade>& judgments) const = 0;
};

// Loads graders/<id>/grader.yaml strictly (file:line errors).
Result<std::unique_ptr<JudgeGrader>> LoadJudgeGrader(const std::filesystem::path& grader_yaml);

// Finds judge graders by id under a list of folders (graders/<id>/grader.yaml), loading each
// once. Thread-safe.
class JudgeLibrary {
 public:
  explicit JudgeLibrary(std::vector<std::filesystem::path> dirs) : dirs_(std::move(dirs)) {}
  // kNotFound (with the known ids) when no folder has it.
  Result<std::shared_ptr<const JudgeGrader>> Get(const std::string& id) const;
  // Every grader id found, sorted.
  std::vector<std::string> Ids() const;

 private:
  std::vector<std::filesystem::path> dirs_;
  mutable std::map<std::string, std::shared_ptr<const JudgeGrader>> loaded_;
};

// The probability-weighted score over a judge's first-token top log-probabilities: tokens that
// are integers 0..100 count; score = sum(p * v) / sum(p). Returns {score, mass}; score is empty
// when no such token appears.
struct LogprobScore {
  std::optional<double> score;
  double mass = 0;
};
LogprobScore ScoreFromLogprobs(const std::vector<std::pair<std::string, double>>& top);

// The first balanced JSON object in `text` (skipping prose and code fences around it).
std::optional<std::string> ExtractJsonObject(const std::string& text);

// Checks `value` against a JSON Schema subset (type, properties, required, items, enum,
// additionalProperties: false). Returns "" when valid, else the first problem with its path.
std::string CheckJsonSchema(const Json& value, const Json& schema, const std::string& path = "");

}  // namespace plumb

#endif  // PLUMB_JUDGE_H_
