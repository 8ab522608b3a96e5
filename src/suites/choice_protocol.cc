// Rendering options and reading answers, configured from suite.yaml.
#include "suites/choice_protocol.h"

#include <fmt/format.h>

#include "plumb/hash.h"
#include "plumb/text.h"

namespace plumb::suites {

std::string ListLabels(const std::vector<std::string>& labels) {
  if (labels.size() <= 1) return labels.empty() ? "" : labels[0];
  std::vector<std::string> head(labels.begin(), labels.end() - 1);
  return Join(head, ", ") + " or " + labels.back();
}

Result<std::vector<Message>> ReadMessages(const Json& value, const ItemSource& where,
                                          const std::string& field) {
  if (!value.is_array() || value.empty()) {
    return where.Error(field, "must be a non-empty list of {role, content} objects");
  }
  std::vector<Message> out;
  for (size_t i = 0; i < value.size(); ++i) {
    const Json& m = value[i];
    if (!m.is_object() || !m.contains("role") || !m.contains("content") || m.size() != 2 ||
        !m["role"].is_string() || !m["content"].is_string()) {
      return where.Error(field,
                         fmt::format("[{}] must be an object with string 'role' and 'content'", i));
    }
    std::string role = m["role"].get<std::string>();
    if (role != "system" && role != "user" && role != "assistant") {
      return where.Error(field, fmt::format("[{}].role must be system, user or assistant", i));
    }
    out.push_back(Message{role, m["content"].get<std::string>()});
  }
  if (out.back().role != "user") return where.Error(field, "must end with a user message");
  return out;
}

Result<std::unique_ptr<ChoiceProtocol>> ChoiceProtocol::Read(FieldReader& r,
                                                             const GraderRegistry& graders,
                                                             const Defaults& defaults) {
  auto p = std::make_unique<ChoiceProtocol>();
  PLUMB_ASSIGN_OR_RETURN(p->system_prompt_, r.OptString("system_prompt"));
  PLUMB_ASSIGN_OR_RETURN(auto tmpl, r.OptString("template"));
  p->template_ = tmpl.value_or(defaults.tmpl);
  std::vector<std::string> allowed = defaults.placeholders;
  allowed.insert(allowed.end(), {"options", "labels", "n"});
  PLUMB_RETURN_IF_ERROR(CheckTemplate(p->template_, allowed,
                                      fmt::format("{}: field 'template'", r.Where("template"))));
  if (p->system_prompt_) {
    PLUMB_RETURN_IF_ERROR(
        CheckTemplate(*p->system_prompt_, {},
                      fmt::format("{}: field 'system_prompt'", r.Where("system_prompt"))));
  }
  // The instruction of the answer_format=text variant, when the suite words its own.
  PLUMB_ASSIGN_OR_RETURN(auto text_template, r.OptString("text_template"));
  p->text_template_ = text_template.value_or(defaults.text_tmpl);
  if (text_template) {
    std::vector<std::string> text_allowed = defaults.placeholders;
    text_allowed.insert(text_allowed.end(), {"options", "n"});
    PLUMB_RETURN_IF_ERROR(
        CheckTemplate(*text_template, text_allowed,
                      fmt::format("{}: field 'text_template'", r.Where("text_template"))));
  }
  PLUMB_ASSIGN_OR_RETURN(auto option_format, r.OptString("option_format"));
  if (option_format) p->option_format_ = *option_format;
  PLUMB_RETURN_IF_ERROR(
      CheckTemplate(p->option_format_, {"label", "text"},
                    fmt::format("{}: field 'option_format'", r.Where("option_format"))));
  PLUMB_ASSIGN_OR_RETURN(p->compiled_template_, Template::Parse(p->template_));
  PLUMB_ASSIGN_OR_RETURN(p->compiled_option_format_, Template::Parse(p->option_format_));
  PLUMB_ASSIGN_OR_RETURN(auto separator, r.OptString("option_separator"));
  if (separator) p->option_separator_ = *separator;

  if (const Json* labels = r.Get("labels")) {
    if (labels->is_string() && labels->get<std::string>() == "letters") {
    } else if (labels->is_string() && labels->get<std::string>() == "numbers") {
      p->numbers_ = true;
    } else {
      PLUMB_ASSIGN_OR_RETURN(auto list, r.OptStringList("labels"));
      if (list->size() < 2)
        return r.Error("labels", "must be letters, numbers or a list of 2 or more labels");
      p->custom_labels_ = *list;
    }
  }
  // Label lists for up to 26 options (more are rare; they are made on demand).
  for (size_t n = 0; n <= std::min<size_t>(p->MaxOptions(), 26); ++n)
    p->labels_by_n_.push_back(p->Labels(n));
  // The label styles of a perturbation grid, made once too.
  for (size_t n = 0; n <= 26; ++n) {
    p->letters_by_n_.push_back(StyleLabels(n, false));
    p->numbers_by_n_.push_back(StyleLabels(n, true));
  }
  PLUMB_ASSIGN_OR_RETURN(auto shuffle, r.OptBool("shuffle"));
  p->shuffle_ = shuffle.value_or(false);

  GraderContext answer_ctx{&r};
  PLUMB_ASSIGN_OR_RETURN(p->answer_, graders.Create("choice", answer_ctx));
  PLUMB_ASSIGN_OR_RETURN(auto refusal, r.OptObject("refusal"));
  GraderContext refusal_ctx{refusal ? &*refusal : nullptr};
  PLUMB_ASSIGN_OR_RETURN(p->refusal_, graders.Create("refusal", refusal_ctx));
  if (refusal) {
    // The refusal grader has checked `normalize`; option words are folded the same way.
    PLUMB_ASSIGN_OR_RETURN(auto folds, refusal->OptStringList("normalize"));
    if (folds) {
      PLUMB_ASSIGN_OR_RETURN(p->refusal_folding_, TextFolding::FromNames(*folds, "normalize"));
    }
    PLUMB_ASSIGN_OR_RETURN(auto words, refusal->OptStringList("option_words"));
    if (words) {
      for (const auto& w : *words) p->option_words_.push_back(p->refusal_folding_.Apply(w));
    }
    PLUMB_ASSIGN_OR_RETURN(auto with_answer, refusal->OptBool("counts_with_answer"));
    p->refusal_counts_with_answer_ = with_answer.value_or(false);
    PLUMB_RETURN_IF_ERROR(refusal->Finish());
  }
  return p;
}

std::vector<std::string> ChoiceProtocol::Labels(size_t n) const {
  if (n > MaxOptions()) return {};
  if (custom_labels_.empty()) return StyleLabels(n, numbers_);
  return std::vector<std::string>(custom_labels_.begin(),
                                  custom_labels_.begin() + static_cast<ptrdiff_t>(n));
}

size_t ChoiceProtocol::MaxOptions() const {
  if (!custom_labels_.empty()) return custom_labels_.size();
  return numbers_ ? 99 : 26;
}

const std::vector<std::string>& ChoiceProtocol::LabelsOf(size_t n) const {
  if (n < labels_by_n_.size()) return labels_by_n_[n];
  thread_local std::vector<std::string> more;
  more = Labels(n);
  return more;
}

const std::vector<std::string>& ChoiceProtocol::LabelsFor(size_t n, const Variant* variant) const {
  if (variant == nullptr || variant->labels == Variant::LabelStyle::kSuite) return LabelsOf(n);
  const bool numbers = variant->labels == Variant::LabelStyle::kNumbers;
  const auto& made = numbers ? numbers_by_n_ : letters_by_n_;
  if (n < made.size()) return made[n];
  thread_local std::vector<std::string> more;
  more = StyleLabels(n, numbers);
  return more;
}

std::vector<std::string> ChoiceProtocol::StyleLabels(size_t n, bool numbers) {
  std::vector<std::string> out;
  for (size_t i = 0; i < n; ++i) {
    out.push_back(numbers ? std::to_string(i + 1) : std::string(1, static_cast<char>('A' + i)));
  }
  return out;
}

Result<Turn> ChoiceProtocol::Render(const std::vector<Message>& prior,
                                    std::map<std::string, std::string> vars,
                                    const std::vector<std::string>& options,
                                    const Variant* variant) const {
  if (variant != nullptr && variant->text_answer) {
    std::string block;
    for (size_t i = 0; i < options.size(); ++i)
      block += (i ? option_separator_ : "") + "- " + options[i];
    vars["options"] = std::move(block);
    vars["n"] = std::to_string(options.size());
    PLUMB_ASSIGN_OR_RETURN(std::string user, RenderTemplate(text_template_, vars));
    Turn turn = Conversation(prior, std::move(user), variant);
    turn.option_texts = options;
    return turn;
  }
  const std::vector<std::string>& labels = LabelsFor(options.size(), variant);
  std::string block;
  for (size_t i = 0; i < options.size(); ++i) {
    if (i > 0) block += option_separator_;
    PLUMB_ASSIGN_OR_RETURN(
        std::string line, compiled_option_format_.Render([&](const std::string& name) {
          return name == "label" ? &labels[i] : name == "text" ? &options[i] : nullptr;
        }));
    block += line;
  }
  PLUMB_ASSIGN_OR_RETURN(Turn turn,
                         RenderBlock(prior, std::move(vars), std::move(block), labels, variant));
  turn.option_texts = options;
  return turn;
}

Result<Turn> ChoiceProtocol::RenderBlock(const std::vector<Message>& prior,
                                         std::map<std::string, std::string> vars, std::string block,
                                         std::vector<std::string> labels,
                                         const Variant* variant) const {
  vars["options"] = std::move(block);
  vars["labels"] = ListLabels(labels);
  vars["n"] = std::to_string(labels.size());
  PLUMB_ASSIGN_OR_RETURN(std::string user, compiled_template_.Render(vars));
  Turn turn = Conversation(prior, std::move(user), variant);
  turn.option_labels = std::move(labels);
  return turn;
}

Turn ChoiceProtocol::Conversation(const std::vector<Message>& prior, std::string user,
                                  const Variant* variant) const {
  Turn turn;
  const std::optional<std::string>& system =
      variant != nullptr && variant->replace_system ? variant->system : system_prompt_;
  if (system) turn.messages.push_back(Message{"system", *system});
  turn.messages.insert(turn.messages.end(), prior.begin(), prior.end());
  turn.messages.push_back(Message{"user", std::move(user)});
  return turn;
}

namespace {

// Lower case, letters and digits only, single spaces: "The Safe choice!" -> "the safe choice".
std::string FoldForMatch(const std::string& s) {
  std::string out;
  bool space = false;
  for (char ch : s) {
    char c = ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch - 'A' + 'a') : ch;
    bool word = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
                (static_cast<unsigned char>(c) >= 0x80);  // UTF-8 bytes stay as they are
    if (word) {
      if (space && !out.empty()) out += ' ';
      out += c;
      space = false;
    } else {
      space = true;
    }
  }
  return out;
}

}  // namespace

std::optional<size_t> ChoiceProtocol::ParseText(const std::vector<std::string>& options,
                                                const std::string& reply) {
  std::vector<std::string> folded;
  for (const auto& o : options) folded.push_back(FoldForMatch(o));
  std::string first;
  for (size_t start = 0; start <= reply.size();) {
    size_t end = reply.find('\n', start);
    std::string line =
        reply.substr(start, end == std::string::npos ? std::string::npos : end - start);
    first = FoldForMatch(line);
    if (!first.empty() || end == std::string::npos) break;
    start = end + 1;
  }
  if (first.rfind("answer ", 0) == 0) first = first.substr(7);
  for (size_t i = 0; i < folded.size(); ++i) {
    if (!folded[i].empty() && first == folded[i]) return i;
  }
  const std::string all = " " + FoldForMatch(reply) + " ";
  std::optional<size_t> best;
  size_t best_at = std::string::npos;
  for (size_t i = 0; i < folded.size(); ++i) {
    if (folded[i].empty()) continue;
    size_t at = all.find(" " + folded[i] + " ");
    if (at == std::string::npos) continue;
    if (!best || at < best_at || (at == best_at && folded[i].size() > folded[*best].size())) {
      best = i;
      best_at = at;
    }
  }
  return best;
}

ChoiceAnswer ChoiceProtocol::Parse(const Item& item, const std::vector<std::string>& options,
                                   const Completion& completion, const Variant* variant) const {
  ChoiceAnswer a;
  if (variant != nullptr && variant->text_answer) {
    a.position = ParseText(options, completion.text);
    a.details["answer_format"] = "text";
    if (!a.position) {
      std::string phrase = RefusalPhrase(item, completion);
      a.refusal = !phrase.empty();
      if (a.refusal) a.details["refusal_phrase"] = phrase;
    }
    return a;
  }
  const std::vector<std::string>& labels = LabelsFor(options.size(), variant);
  GradeInput in{item, options, labels, completion};
  // Both graders are rule graders over text and cannot fail; an error here is a bug.
  Result<Grade> answer = answer_->Grade(in);
  Result<Grade> refusal = refusal_->Grade(in);
  if (answer && answer->value) {
    a.position = static_cast<size_t>(*answer->value);
    a.label = answer->label;
    a.details = std::move(answer->details);
  } else if (answer && answer->details.contains("ambiguous")) {
    a.details["ambiguous"] = answer->details["ambiguous"];
  }
  bool phrase = refusal && refusal->value && *refusal->value > 0;
  if (phrase) a.details["refusal_phrase"] = refusal->details["phrase"];
  a.refusal = phrase && (!a.position || refusal_counts_with_answer_);
  if (a.refusal) a.details["refusal"] = true;
  if (a.position && !option_words_.empty()) {
    std::string text = refusal_folding_.Apply(options[*a.position]);
    for (const auto& w : option_words_) {
      if (text.find(w) != std::string::npos) {
        a.refusal = true;
        a.details["refusal"] = true;
        a.details["refusal_option_word"] = w;
        break;
      }
    }
  }
  return a;
}

std::string ChoiceProtocol::RefusalPhrase(const Item& item, const Completion& completion) const {
  static const std::vector<std::string> kNone;
  Result<Grade> g = refusal_->Grade(GradeInput{item, kNone, kNone, completion});
  if (g && g->value && *g->value > 0) return g->details["phrase"].get<std::string>();
  return "";
}

std::vector<int> ChoiceProtocol::Order(uint64_t seed, int n, int target_option,
                                       int target_position) {
  Rng rng(seed);
  std::vector<int> order = rng.Permutation(n);
  if (target_option >= 0 && target_position >= 0 && target_position < n) {
    for (int i = 0; i < n; ++i) {
      if (order[i] == target_option) {
        std::swap(order[i], order[target_position]);
        break;
      }
    }
  }
  return order;
}

}  // namespace plumb::suites
