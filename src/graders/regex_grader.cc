// The "regex" grader: value 1 when `pattern` matches somewhere in the reply (or, with
// `expect: no_match`, when it does not), else 0.
#include "graders/graders.h"
#include "plumb/regex.h"

namespace plumb::graders {
namespace {

class RegexGrader final : public Grader {
 public:
  RegexGrader(Regex regex, bool expect_match)
      : regex_(std::move(regex)), expect_match_(expect_match) {}

  std::string Id() const override { return "regex@1"; }

  Result<plumb::Grade> Grade(const GradeInput& in) const override {
    plumb::Grade g;
    g.grader = Id();
    RegexMatch m;
    bool matched = regex_.Search(in.completion.text, &m);
    g.value = matched == expect_match_ ? 1 : 0;
    g.label = matched ? "match" : "no_match";
    if (matched) g.details["match"] = std::string(m.whole.substr(0, 200));
    return g;
  }

 private:
  Regex regex_;
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
  auto regex = Regex::Compile(pattern, Regex::Options{ignore_case.value_or(false)});
  if (!regex) return r.Error("pattern", regex.error().message());
  return std::unique_ptr<Grader>(
      std::make_unique<RegexGrader>(std::move(*regex), !expect || *expect == "match"));
}

}  // namespace plumb::graders
