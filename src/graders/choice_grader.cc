// The "choice" grader: which option label did the reply choose? Patterns are tried in order;
// the first that yields a label decides. A reply no pattern can read gets the label "" (a parse
// failure, which the suite counts and shows), never a guess.
#include <fmt/format.h>

#include <map>
#include <mutex>
#include <regex>

#include "graders/graders.h"
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
};

// The one label that occurs in `segment`, or "" when none or several do.
std::string OnlyLabelIn(const std::string& segment, const std::vector<std::string>& labels) {
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
      {R"([Aa]nswer\s*(?:is\s*)?[\*_]*:?[\*_]*\s*[\*_]*[\(\[]?({labels})[\)\]]?[\*_]*(?![A-Za-z0-9]))",
       Pick::kLast},
      {R"(^\s*[\*_\(\[]*({labels})[\*_\)\]]*(?:[\.:,\)]|\s*$|\s+[-]\s))", Pick::kFirst},
      {R"((?:^|[^A-Za-z0-9])({labels})(?![A-Za-z0-9]))", Pick::kUnique},
  };
  return kDefaults;
}

std::string RegexEscape(const std::string& s) {
  static const std::string kSpecial = R"(\^$.|?*+()[]{}/)";
  std::string out;
  for (char c : s) {
    if (kSpecial.find(c) != std::string::npos) out += '\\';
    out += c;
  }
  return out;
}

std::string Substitute(const std::string& regex, const std::vector<std::string>& labels) {
  std::vector<std::string> escaped;
  for (const auto& l : labels) escaped.push_back(RegexEscape(l));
  std::string alt = "(?:" + Join(escaped, "|") + ")";
  std::string out = regex;
  for (size_t p = out.find("{labels}"); p != std::string::npos; p = out.find("{labels}", p)) {
    out.replace(p, 8, alt);
    p += alt.size();
  }
  return out;
}

class ChoiceGrader final : public Grader {
 public:
  explicit ChoiceGrader(std::vector<Pattern> patterns) : patterns_(std::move(patterns)) {}

  std::string Id() const override { return "choice@1"; }

  Result<plumb::Grade> Grade(const GradeInput& in) const override {
    plumb::Grade g;
    g.grader = Id();
    const std::string text = NormalizeQuotes(in.completion.text);
    const std::string upper = ToUpper(text);
    const auto& compiled = Compiled(in.labels);
    for (size_t i = 0; i < compiled.size(); ++i) {
      const Pattern& p = patterns_[i];
      const std::string& subject = p.uppercase ? upper : text;
      std::vector<std::string> found;
      for (auto it = std::sregex_iterator(subject.begin(), subject.end(), compiled[i]);
           it != std::sregex_iterator(); ++it) {
        found.push_back(p.contains ? OnlyLabelIn((*it)[1].str(), in.labels) : (*it)[1].str());
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

 private:
  const std::vector<std::regex>& Compiled(const std::vector<std::string>& labels) const {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = cache_.find(labels);
    if (it != cache_.end()) return it->second;
    std::vector<std::regex> out;
    // Patterns were test-compiled when the grader was built, so this cannot throw.
    for (const auto& p : patterns_) out.emplace_back(Substitute(p.regex, labels));
    return cache_.emplace(labels, std::move(out)).first->second;
  }

  std::vector<Pattern> patterns_;
  mutable std::mutex mu_;
  mutable std::map<std::vector<std::string>, std::vector<std::regex>> cache_;
};

}  // namespace

Result<std::unique_ptr<Grader>> MakeChoiceGrader(const GraderContext& ctx) {
  std::vector<Pattern> patterns = DefaultPatterns();
  if (ctx.config != nullptr) {
    FieldReader& r = *ctx.config;
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
        p.uppercase = uppercase.value_or(false);
        p.contains = contains.value_or(false);
        PLUMB_RETURN_IF_ERROR(er.Finish());
        try {
          std::regex test(Substitute(p.regex, {"A", "B", "C", "D"}));
          if (test.mark_count() < 1)
            return er.Error("regex", "needs a capture group for the label");
        } catch (const std::regex_error& e) {
          return er.Error("regex", std::string("is not a valid regular expression: ") + e.what());
        }
        patterns.push_back(std::move(p));
      }
    }
  }
  return std::unique_ptr<Grader>(std::make_unique<ChoiceGrader>(std::move(patterns)));
}

}  // namespace plumb::graders
