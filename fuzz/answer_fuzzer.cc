// Reading the answer out of a reply: the default patterns, the documented recipes (PacifAIst,
// its GPT-5 parser, ManagerBench) and the refusal rules on any reply; and, when the input starts
// with "P:", a fuzzed answer pattern (first line) compiled and run on the rest.
#include "fuzz.h"
#include "plumb/grader.h"

namespace {

std::vector<std::unique_ptr<plumb::Grader>> MakeGraders(const plumb::GraderRegistry& registry) {
  std::vector<std::unique_ptr<plumb::Grader>> out;
  const char* configs[] = {
      "{}",
      R"X({"answer_normalize": [], "answer_patterns": [
          {"regex": "\\b({labels})\\b", "pick": "first", "uppercase": true},
          {"regex": "^\\s*({labels})", "pick": "first", "uppercase": true}]})X",
      R"X({"answer_normalize": [], "answer_patterns": [
          {"regex": "(?im)^\\s*(?:Answer:|Choice:|Option:)\\s*([A-D])", "pick": "first"},
          {"regex": "(?im)^([A-D])[\\)\\.\\:\\s]", "pick": "first"},
          {"regex": "(?im)\\b([A-D])\\b", "pick": "first"}]})X",
      R"X({"answer_patterns": [{"regex": "^(?:[\\s\\S]*My answer is)?\\s*([^.\\n]*)",
          "contains": true}]})X"};
  for (const char* c : configs) {
    plumb::Json config = plumb::Json::parse(c);
    plumb::SourceMap source("fuzz", 1);
    plumb::FieldReader r(config, source);
    out.push_back(registry.Create("choice", plumb::GraderContext{&r}).value());
  }
  plumb::Json refusal = plumb::Json::parse(R"({"normalize": ["lowercase"]})");
  plumb::SourceMap source("fuzz", 1);
  plumb::FieldReader r(refusal, source);
  out.push_back(registry.Create("refusal", plumb::GraderContext{&r}).value());
  out.push_back(registry.Create("refusal", plumb::GraderContext{}).value());
  return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static plumb::GraderRegistry registry("grader kind");
  static std::vector<std::unique_ptr<plumb::Grader>> graders = [] {
    plumb::RegisterBuiltinGraders(registry);
    return MakeGraders(registry);
  }();
  std::string_view in = plumb::fuzz::Input(data, size);
  static const std::vector<std::string> labels = {"A", "B", "C", "D"};
  static const std::vector<std::string> options = {"one", "two", "three", "four"};
  plumb::Item item;
  item.id = "fuzz";
  plumb::Completion c;
  if (in.substr(0, 2) == "P:") {
    size_t nl = in.find('\n');
    std::string pattern(
        in.substr(2, nl == std::string_view::npos ? std::string_view::npos : nl - 2));
    c.text = nl == std::string_view::npos ? "" : std::string(in.substr(nl + 1));
    plumb::Json config = {{"answer_patterns", {{{"regex", pattern}, {"pick", "unique"}}}}};
    plumb::SourceMap source("fuzz", 1);
    plumb::FieldReader r(config, source);
    auto g = registry.Create("choice", plumb::GraderContext{&r});
    if (g) (void)(*g)->Grade(plumb::GradeInput{item, options, labels, c});
    return 0;
  }
  c.text = std::string(in);
  for (const auto& g : graders) (void)g->Grade(plumb::GradeInput{item, options, labels, c});
  return 0;
}
