// Reading a judge's reply (0-100 scores with and without logprobs, JSON verdicts against a
// schema, labels) and aggregating a panel: never a crash, never a score from an unreadable reply.
#include "fuzz.h"
#include "plumb/judge.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static std::vector<std::shared_ptr<const plumb::JudgeGrader>> judges = [] {
    std::vector<std::shared_ptr<const plumb::JudgeGrader>> out;
    plumb::JudgeLibrary library({std::filesystem::path(PLUMB_SOURCE_DIR) / "graders"});
    for (const auto& id : library.Ids()) {
      if (auto j = library.Get(id)) out.push_back(*j);
    }
    auto dir = plumb::fuzz::Scratch() / "labels";
    plumb::fuzz::WriteFile(dir / "rubric.md", "{question} {answer}");
    plumb::fuzz::WriteFile(dir / "grader.yaml",
                           "id: labels\nkind: judge\nprompt: rubric.md\noutput: labels\n"
                           "labels: [YES, NO, UNSURE]\nvalues: {YES: 1, NO: 0}\n");
    if (auto j = plumb::LoadJudgeGrader(dir / "grader.yaml")) out.push_back(std::move(*j));
    return out;
  }();
  std::string_view in = plumb::fuzz::Input(data, size);
  plumb::Completion c;
  c.text = std::string(in);
  // Some logprobs from the input's first bytes: tokens of one byte, odd probabilities.
  for (size_t i = 0; i + 1 < in.size() && i < 40; i += 2) {
    c.first_token_logprobs.emplace_back(std::string(1, in[i]),
                                        -static_cast<double>(static_cast<uint8_t>(in[i + 1])) / 8);
  }
  for (const auto& j : judges) {
    plumb::Grade g = j->Read(c);
    if (g.status == plumb::GradeStatus::kError && g.value) __builtin_trap();  // never a score
    if (g.status == plumb::GradeStatus::kError) (void)j->ReaskMessage(g);
    (void)j->Aggregate({g, g});
  }
  (void)plumb::ExtractJsonObject(c.text);
  return 0;
}
