// The "regex" grader: value 1 when `pattern` matches somewhere in the reply (or, with
// `expect: no_match`, when it does not), else 0.
#include <regex>

#include "graders/graders.h"

namespace plumb::graders {
namespace {

class RegexGrader final : public Grader {
 public:
  RegexGrader(std::string pattern, bool ignore_case, bool expect_match)
      : pattern_(std::move(pattern)),
        regex_(pattern_,
               ignore_case ? std::regex::ECMAScript | std::regex::icase : std::regex::ECMAScript),
        expect_match_(expect_match) {}

  std::string Id() const override { return "regex@1"; }

  Result<plumb::Grade> Grade(const GradeInput& in) const override {
    plumb::Grade g;
    g.grader = Id();
    std::smatch m;
    bool matched = std::regex_search(in.completion.text, m, regex_);
    g.value = matched == expect_match_ ? 1 : 0;
    g.label = matched ? "match" : "no_match";
    if (matched) g.details["match"] = m.str(0);
    return g;
  }

 private:
  std::string pattern_;
  std::regex regex_;
  bool expect_match_;
};

}  // namespace

Result<std::unique_ptr<Grader>> MakeRegexGrader(const GraderContext& ctx) {
  if (ctx.config == nullptr) return InvalidArgument("grader 'regex' needs a 'pattern' setting");
  FieldReader& r = *ctx.config;
  PLUMB_ASSIGN_OR_RETURN(std::string pattern, r.String("pattern"));
  PLUMB_ASSIGN_OR_RETURN(auto ignore_case, r.OptBool("ignore_case"));
  PLUMB_ASSIGN_OR_RETURN(auto expect, r.OptString("expect"));
  if (expect && *expect != "match" && *expect != "no_match") {
    return r.Error("expect", "must be match or no_match");
  }
  try {
    return std::unique_ptr<Grader>(std::make_unique<RegexGrader>(
        pattern, ignore_case.value_or(false), !expect || *expect == "match"));
  } catch (const std::regex_error& e) {
    return r.Error("pattern", std::string("is not a valid regular expression: ") + e.what());
  }
}

}  // namespace plumb::graders
