// The protocol shared by every suite kind that shows options and reads back a label: the
// system prompt, the instruction template, option labels and their rendering, the answer
// patterns and refusal detection. All of it is set in suite.yaml, so a published protocol can be
// reproduced without C++.
#ifndef PLUMB_SUITES_CHOICE_PROTOCOL_H_
#define PLUMB_SUITES_CHOICE_PROTOCOL_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "plumb/grader.h"
#include "plumb/suite.h"
#include "plumb/text.h"

namespace plumb::suites {

// What the reply chose.
struct ChoiceAnswer {
  std::optional<size_t> position;  // index into the presented options; empty: none found
  std::string label;               // the label found ("" when none)
  // The reply refused: a refusal phrase without a label, or (as the manifest configures) a
  // phrase next to a label or a chosen option that declines. A refusal with a label keeps its
  // label: it is graded as that choice and counted as a refusal too.
  bool refusal = false;
  Json details = Json::object();  // pattern used, refusal phrase, ...
};

class ChoiceProtocol {
 public:
  // Kind-specific defaults.
  struct Defaults {
    std::string tmpl;                       // the instruction template
    std::vector<std::string> placeholders;  // allowed besides {options}, {labels}, {n}
    std::string text_tmpl;  // the instruction of the answer_format=text variant (no labels)
  };

  // Reads system_prompt, template, option_format, labels, shuffle, answer_patterns and refusal
  // from the manifest.
  static Result<std::unique_ptr<ChoiceProtocol>> Read(FieldReader& manifest,
                                                      const GraderRegistry& graders,
                                                      const Defaults& defaults);

  // A presentation variant (the perturbation grid): other labels, another system prompt.
  struct Variant {
    enum class LabelStyle { kSuite, kLetters, kNumbers };
    LabelStyle labels = LabelStyle::kSuite;
    bool replace_system = false;        // `system` instead of the suite's system prompt
    std::optional<std::string> system;  // nullopt with replace_system: none
    // Options shown without labels; the reply names the chosen option by its full text.
    bool text_answer = false;
  };

  // The labels for n options ("A".."Z", "1".., or the manifest's own list); empty if n is more
  // than the label style offers.
  std::vector<std::string> Labels(size_t n) const;
  // The labels of a variant's style.
  // (Made at load for up to 26 options: rendering and parsing copy nothing.)
  const std::vector<std::string>& LabelsFor(size_t n, const Variant* variant) const;
  bool has_custom_labels() const { return !custom_labels_.empty(); }
  // The same, made once per number of options and kept (n <= MaxOptions()).
  const std::vector<std::string>& LabelsOf(size_t n) const;
  size_t MaxOptions() const;
  bool shuffle() const { return shuffle_; }
  const std::optional<std::string>& system_prompt() const { return system_prompt_; }

  // Builds the conversation: the system prompt (when set), `prior` messages, then the rendered
  // user message. `vars` fills the kind's placeholders; {options}, {labels} and {n} are added.
  // Under a text-answer variant the options are "- text" lines without labels, under the
  // manifest's `text_template` or the kind's (Defaults::text_tmpl).
  Result<Turn> Render(const std::vector<Message>& prior, std::map<std::string, std::string> vars,
                      const std::vector<std::string>& options,
                      const Variant* variant = nullptr) const;
  // As Render, with the options already rendered into one block under `labels`.
  Result<Turn> RenderBlock(const std::vector<Message>& prior,
                           std::map<std::string, std::string> vars, std::string block,
                           std::vector<std::string> labels, const Variant* variant = nullptr) const;

  // Which option a text answer names: the first line (after an "Answer:" prefix) equal to an
  // option once both are folded (lower case, letters and digits, single spaces); otherwise the
  // one option whose folded text occurs in the folded reply (several: the one that occurs
  // first, then the longest); otherwise none.
  static std::optional<size_t> ParseText(const std::vector<std::string>& options,
                                         const std::string& reply);

  // Reads the answer out of a reply to `options` (in the order shown; at least one); under a
  // text-answer variant by ParseText (a refusal phrase counts only when no option is named).
  ChoiceAnswer Parse(const Item& item, const std::vector<std::string>& options,
                     const Completion& completion, const Variant* variant = nullptr) const;
  // The refusal phrase found in a reply to an open prompt, or "" when there is none.
  std::string RefusalPhrase(const Item& item, const Completion& completion) const;

  // A random order of `n` options that puts option `target_option` at `target_position`
  // (-1: unconstrained); used to balance the aligned option over positions.
  static std::vector<int> Order(uint64_t seed, int n, int target_option, int target_position);

 private:
  std::optional<std::string> system_prompt_;
  std::string template_;
  std::string text_template_;  // Defaults::text_tmpl, or the manifest's text_template
  std::string option_format_ = "{label}. {text}";
  Template compiled_template_, compiled_option_format_;  // parsed once: rendered per sample
  std::vector<std::vector<std::string>> labels_by_n_;    // LabelsOf, filled at load
  std::vector<std::vector<std::string>> letters_by_n_, numbers_by_n_;  // LabelsFor, likewise
  static std::vector<std::string> StyleLabels(size_t n, bool numbers);
  // The system prompt (the suite's, or the variant's), `prior`, then `user`.
  Turn Conversation(const std::vector<Message>& prior, std::string user,
                    const Variant* variant) const;
  std::string option_separator_ = "\n";
  std::vector<std::string> custom_labels_;
  bool numbers_ = false;
  bool shuffle_ = false;
  std::unique_ptr<Grader> answer_;
  std::unique_ptr<Grader> refusal_;
  std::vector<std::string> option_words_;    // a chosen option containing one of these refuses
  TextFolding refusal_folding_{true, true};  // refusal.normalize, for option words too
  bool refusal_counts_with_answer_ = false;
};

// "A, B, C or D".
std::string ListLabels(const std::vector<std::string>& labels);

// Reads a list of messages ([{role, content}, ...]) from an item field.
Result<std::vector<Message>> ReadMessages(const Json& value, const ItemSource& where,
                                          const std::string& field);

}  // namespace plumb::suites

#endif  // PLUMB_SUITES_CHOICE_PROTOCOL_H_
