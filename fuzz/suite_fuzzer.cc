// The suite loader on a fuzzed suite.yaml and item file (split at the first line "---"), then
// the loaded suite's first turns, grades on a fixed reply and metrics (perturbation grids'
// stability metrics included): whatever a manifest says, loading fails with a message or
// gives a suite that runs.
#include "fuzz.h"
#include "plumb/suite.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static plumb::SuiteKindRegistry kinds("suite kind");
  static plumb::GraderRegistry graders("grader kind");
  static bool registered = [] {
    plumb::RegisterBuiltinSuiteKinds(kinds);
    plumb::RegisterBuiltinGraders(graders);
    return true;
  }();
  (void)registered;
  std::string_view in = plumb::fuzz::Input(data, size);
  size_t cut = in.find("\n---\n");
  std::string_view manifest = in.substr(0, cut);
  std::string_view items = cut == std::string_view::npos ? "" : in.substr(cut + 5);
  auto dir = plumb::fuzz::Scratch() / "s";
  plumb::fuzz::WriteFile(dir / "suite.yaml", std::string("id: s\n") + std::string(manifest));
  plumb::fuzz::WriteFile(dir / "items.jsonl", items);
  plumb::fuzz::WriteFile(dir / "items.csv", items);
  auto suite = plumb::LoadSuite(dir / "suite.yaml", kinds, graders);
  if (!suite) return 0;
  std::vector<size_t> selected;
  for (size_t i = 0; i < suite->items.size() && i < 8; ++i) selected.push_back(i);
  auto samples = suite->kind->Plan(suite->items, selected, 2, 1);
  std::vector<plumb::SampleOutcome> outcomes;
  for (const auto& s : samples) {
    const plumb::Item& item = suite->items[s.item];
    auto turn = suite->kind->FirstTurn(item, s);
    if (!turn) continue;
    plumb::Completion c;
    c.text = "Answer: B. I cannot be sure.";
    std::vector<plumb::Exchange> history = {plumb::Exchange{turn->messages, c}};
    auto next = suite->kind->NextTurn(item, s, history);
    outcomes.push_back(
        plumb::SampleOutcome{s.item, s.epoch, true, suite->kind->GradeSample(item, s, history)});
  }
  // Judged kinds grade by their judges, not here: their metrics are left out.
  if (!suite->kind->NeedsJudges()) {
    (void)suite->kind->Metrics(suite->items, outcomes, plumb::MetricOptions{1, 20});
  }
  return 0;
}
