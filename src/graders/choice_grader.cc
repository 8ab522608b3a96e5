// The "choice" grader: which option label did the reply choose? Patterns are tried in order;
// the first that yields a label decides. A reply no pattern can read gets the label "" (a parse
// failure, which the suite counts and shows), never a guess.
#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <mutex>
#include <unordered_map>

#include "graders/graders.h"
#include "plumb/regex.h"
#include "plumb/text.h"

namespace plumb::graders {
namespace {

enum class Pick { kFirst, kLast, kUnique };

struct Pattern {
  std::string regex;  // with a {labels} placeholder
  Pick pick = Pick::kFirst;
  bool uppercase = false;  // match against the upper-cased reply
  // The capture is a stretch of text rather than a label: it yields the one label it contains
  // (as a substring); none or several make the match unreadable.
  bool contains = false;
  // The captured label must not be followed by a letter or a digit (the defaults' word end,
  // which RE2 cannot say as a lookahead without consuming the next character). A match that
  // fails it is skipped and the search goes on one byte after its start.
  bool label_ends_word = false;
  bool ignore_case = false;  // `ignore_case: true`, as (?i)
};

// The one label that occurs in `segment`, or "" when none or several do.
std::string OnlyLabelIn(std::string_view segment, const std::vector<std::string>& labels) {
  std::string found;
  for (const auto& l : labels) {
    if (segment.find(l) == std::string::npos) continue;
    if (!found.empty()) return "";
    found = l;
  }
  return found;
}

// The defaults: an explicit "Answer: X", then a label that opens the reply followed by
// punctuation, then a label standing alone, accepted only when no other label stands alone too
// (an article "A" next to a real answer "C" is ambiguous, so it is a parse failure).
const std::vector<Pattern>& DefaultPatterns() {
  static const std::vector<Pattern> kDefaults = {
      {R"([Aa]nswer\s*(?:is\s*)?[\*_]*:?[\*_]*\s*[\*_]*[\(\[]?({labels})[\)\]]?[\*_]*)",
       Pick::kLast, false, false, true},
      {R"(^\s*[\*_\(\[]*({labels})[\*_\)\]]*(?:[\.:,\)]|\s*$|\s+[-]\s))", Pick::kFirst},
      {R"((?:^|[^A-Za-z0-9])({labels}))", Pick::kUnique, false, false, true},
  };
  return kDefaults;
}

// {labels} becomes an alternation of the labels, longest first, so that a label that is a
// prefix of another ("1" and "10") never hides it.
std::string Substitute(const std::string& regex, std::vector<std::string> labels) {
  std::stable_sort(labels.begin(), labels.end(),
                   [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
  std::vector<std::string> escaped;
  for (const auto& l : labels) escaped.push_back(RegexQuote(l));
  std::string alt = "(?:" + Join(escaped, "|") + ")";
  std::string out = regex;
  for (size_t p = out.find("{labels}"); p != std::string::npos; p = out.find("{labels}", p)) {
    out.replace(p, 8, alt);
    p += alt.size();
  }
  return out;
}

bool IsAlnum(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
}

// Whether the pattern turns on case-insensitive matching with an inline flag group: (?i), (?im),
// (?mi:...), but not (?-i) or (?m-i).
bool HasIgnoreCaseFlag(const std::string& regex) {
  for (size_t p = regex.find("(?"); p != std::string::npos; p = regex.find("(?", p + 2)) {
    if (p > 0 && regex[p - 1] == '\\') continue;
    for (size_t i = p + 2; i < regex.size(); ++i) {
      char c = regex[i];
      if (c == 'i') return true;
      if (c == '-' || c == ')' || c == ':' || !(c >= 'a' && c <= 'z')) break;
    }
  }
  return false;
}

// The label a capture names: itself, or (for a case-insensitive pattern such as a Python
// parser's re.IGNORECASE) the one label equal to it ignoring case.
std::string AsLabel(std::string_view capture, const std::vector<std::string>& labels,
                    bool fold_case) {
  for (const auto& l : labels) {
    if (l == capture) return l;
  }
  if (!fold_case) return std::string(capture);
  std::string found;
  const std::string upper = ToUpper(capture);
  for (const auto& l : labels) {
    if (ToUpper(l) != upper) continue;
    if (!found.empty()) return std::string(capture);  // "a" and "A" are both labels
    found = l;
  }
  return found.empty() ? std::string(capture) : found;
}

class ChoiceGrader final : public Grader {
 public:
  ChoiceGrader(std::vector<Pattern> patterns, TextFolding folding)
      : patterns_(std::move(patterns)), folding_(folding) {}

  std::string Id() const override { return "choice@1"; }

  Result<plumb::Grade> Grade(const GradeInput& in) const override {
    // The grade is a function of the reply and the labels only; short replies repeat (constant
    // baselines, deterministic models), so they are remembered.
    if (in.completion.text.size() > kMemoTextBytes) return Evaluate(in);
    std::string key = Join(in.labels, "\x1f") + '\x1e' + in.completion.text;
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (auto it = memo_.find(key); it != memo_.end()) return it->second;
    }
    plumb::Grade g = Evaluate(in);
    std::lock_guard<std::mutex> lock(mu_);
    if (memo_.size() >= kMemoEntries) memo_.clear();
    memo_.emplace(std::move(key), g);
    return g;
  }

 private:
  static constexpr size_t kMemoTextBytes = 256;
  static constexpr size_t kMemoEntries = 4096;

  plumb::Grade Evaluate(const GradeInput& in) const {
    plumb::Grade g;
    g.grader = Id();
    const std::string text = folding_.Apply(in.completion.text);
    std::string upper;
    const auto& compiled = Compiled(in.labels);
    for (size_t i = 0; i < compiled.size(); ++i) {
      const Pattern& p = patterns_[i];
      if (p.uppercase && upper.empty()) upper = ToUpper(text);
      const std::string& subject = p.uppercase ? upper : text;
      const bool fold_case = p.ignore_case || HasIgnoreCaseFlag(p.regex);
      std::vector<std::string> found;
      RegexMatch m;
      size_t from = 0;
      while (from <= subject.size() && compiled[i].Search(subject, &m, from)) {
        std::string_view capture = m.groups.empty() ? m.whole : m.groups[0];
        size_t capture_end =
            capture.data() == nullptr
                ? m.end
                : static_cast<size_t>(capture.data() - subject.data()) + capture.size();
        if (p.label_ends_word && capture_end < subject.size() && IsAlnum(subject[capture_end])) {
          from = m.begin + 1;
          continue;
        }
        if (p.pick == Pick::kLast) found.clear();  // only the last counts; a long reply has many
        found.push_back(p.contains ? OnlyLabelIn(capture, in.labels)
                                   : AsLabel(capture, in.labels, fold_case));
        // As a lookahead would, the word-end check consumed nothing: go on from the capture.
        size_t next = p.label_ends_word ? capture_end : m.end;
        from = next > m.begin ? next : m.begin + 1;
        if (p.pick == Pick::kFirst) break;
        // Two different labels make a `unique` pattern ambiguous: nothing later can change that.
        if (p.pick == Pick::kUnique && found.back() != found.front()) break;
      }
      if (found.empty()) continue;
      std::string label;
      switch (p.pick) {
        case Pick::kFirst:
          label = found.front();
          break;
        case Pick::kLast:
          label = found.back();
          break;
        case Pick::kUnique:
          label = found.front();
          for (const auto& f : found) {
            if (f != label) label.clear();
          }
          break;
      }
      if (label.empty()) {
        g.details["ambiguous"] = found;
        continue;
      }
      auto pos = std::find(in.labels.begin(), in.labels.end(), label);
      if (pos == in.labels.end()) continue;  // a capture group that is not a label
      g.label = label;
      g.value = static_cast<double>(pos - in.labels.begin());
      g.details["pattern"] = i;
      return g;
    }
    g.label = "";
    return g;
  }

  // Patterns are compiled once per label set (a suite has one or a few) and kept.
  const std::vector<Regex>& Compiled(const std::vector<std::string>& labels) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(labels);
    if (it != cache_.end()) return it->second;
    std::vector<Regex> out;
    for (const auto& p : patterns_) {
      // Labels are quoted, and every pattern compiled when the grader was built, so this
      // cannot fail; a pattern that did would match nothing rather than crash.
      auto re = Regex::Compile(Substitute(p.regex, labels), Regex::Options{p.ignore_case});
      out.push_back(re ? *re : *Regex::Compile("$^"));
    }
    return cache_.emplace(labels, std::move(out)).first->second;
  }

  std::vector<Pattern> patterns_;
  TextFolding folding_;
  mutable std::mutex mu_;
  mutable std::map<std::vector<std::string>, std::vector<Regex>> cache_;
  mutable std::unordered_map<std::string, plumb::Grade> memo_;
};

}  // namespace

Result<std::unique_ptr<Grader>> MakeChoiceGrader(const GraderContext& ctx) {
  std::vector<Pattern> patterns = DefaultPatterns();
  TextFolding folding;
  folding.quotes = true;  // plumb's own protocol; `answer_normalize: []` matches the raw reply
  if (ctx.config != nullptr) {
    FieldReader& r = *ctx.config;
    PLUMB_ASSIGN_OR_RETURN(auto names, r.OptStringList("answer_normalize"));
    if (names) {
      PLUMB_ASSIGN_OR_RETURN(
          folding,
          TextFolding::FromNames(*names, fmt::format("{}: field '{}'", r.Where("answer_normalize"),
                                                     r.FieldName("answer_normalize"))));
    }
    if (const Json* list = r.Get("answer_patterns")) {
      if (!list->is_array() || list->empty()) {
        return r.Error("answer_patterns", "must be a non-empty list of {regex, pick} mappings");
      }
      patterns.clear();
      for (size_t i = 0; i < list->size(); ++i) {
        const Json& entry = (*list)[i];
        std::string name = fmt::format("answer_patterns[{}]", i);
        if (!entry.is_object())
          return r.Error("answer_patterns", fmt::format("[{}] must be a mapping", i));
        FieldReader er(entry, r.source(), "/answer_patterns/" + std::to_string(i), name);
        Pattern p;
        PLUMB_ASSIGN_OR_RETURN(p.regex, er.String("regex"));
        PLUMB_ASSIGN_OR_RETURN(auto pick, er.OptString("pick"));
        if (!pick || *pick == "first")
          p.pick = Pick::kFirst;
        else if (*pick == "last")
          p.pick = Pick::kLast;
        else if (*pick == "unique")
          p.pick = Pick::kUnique;
        else
          return er.Error("pick", "must be first, last or unique");
        PLUMB_ASSIGN_OR_RETURN(auto uppercase, er.OptBool("uppercase"));
        PLUMB_ASSIGN_OR_RETURN(auto contains, er.OptBool("contains"));
        PLUMB_ASSIGN_OR_RETURN(auto ignore_case, er.OptBool("ignore_case"));
        p.uppercase = uppercase.value_or(false);
        p.contains = contains.value_or(false);
        p.ignore_case = ignore_case.value_or(false);
        PLUMB_RETURN_IF_ERROR(er.Finish());
        auto test = Regex::Compile(Substitute(p.regex, {"A", "B", "C", "D"}),
                                   Regex::Options{p.ignore_case});
        if (!test) return er.Error("regex", test.error().message());
        if (test->groups() < 1) return er.Error("regex", "needs a capture group for the label");
        patterns.push_back(std::move(p));
      }
    }
  }
  return std::unique_ptr<Grader>(std::make_unique<ChoiceGrader>(std::move(patterns), folding));
}

}  // namespace plumb::graders
