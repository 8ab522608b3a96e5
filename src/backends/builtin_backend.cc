// builtin/<baseline>: reference answers that need no network. They reply with text, so their
// answers go through the same parsing and grading as a real model's. Without options to choose
// from, random/first/last answer "I don't know." (a constant that is never right).
#include <fmt/format.h>

#include <map>

#include "backends/backends.h"
#include "plumb/hash.h"

namespace plumb::backends {
namespace {

constexpr const char* kRefusal = "I'm sorry, but I can't help with that.";
// The constant answer to a question without options (open or short-answer items).
constexpr const char* kNoOptionsAnswer = "I don't know.";

enum class Baseline { kRandom, kFirst, kLast, kRefuse };

const std::map<std::string, std::pair<Baseline, const char*>>& Baselines() {
  static const std::map<std::string, std::pair<Baseline, const char*>> kTable = {
      {"random", {Baseline::kRandom, "a uniformly random option (seeded per sample)"}},
      {"first", {Baseline::kFirst, "always the first option label"}},
      {"last", {Baseline::kLast, "always the last option label"}},
      {"refuse", {Baseline::kRefuse, "always a refusal sentence"}},
  };
  return kTable;
}

class BuiltinBackend final : public Backend {
 public:
  BuiltinBackend(std::string name, Baseline kind) : name_(std::move(name)), kind_(kind) {}

  std::string Id() const override { return "builtin-" + name_ + "@1"; }

  void Submit(ModelCall call, Done done) override {
    const CallReport report{1, 0, 0};
    const auto& labels = call.hints.option_labels;
    Completion c;
    c.finish_reason = "stop";
    if (kind_ == Baseline::kRefuse) {
      c.text = kRefusal;
      done(std::move(c), report);
      return;
    }
    if (labels.empty()) {
      c.text = kNoOptionsAnswer;
      done(std::move(c), report);
      return;
    }
    size_t pick = 0;
    if (kind_ == Baseline::kLast) pick = labels.size() - 1;
    if (kind_ == Baseline::kRandom) {
      Rng rng(DeriveSeed(call.hints.seed, "builtin/random", call.hints.turn));
      pick = rng.Below(labels.size());
    }
    c.text = "Answer: " + labels[pick];
    done(std::move(c), report);
  }

 private:
  std::string name_;
  Baseline kind_;
};

}  // namespace

Result<std::unique_ptr<Backend>> MakeBuiltinBackend(const BackendContext& ctx) {
  PLUMB_RETURN_IF_ERROR(CheckBackendOptions(ctx, {}));
  auto it = Baselines().find(ctx.model);
  if (it == Baselines().end()) {
    std::string known;
    for (const auto& [name, _] : Baselines()) known += (known.empty() ? "" : ", ") + name;
    return NotFound(
        fmt::format("unknown built-in baseline 'builtin/{}'; known: {}", ctx.model, known));
  }
  return std::unique_ptr<Backend>(std::make_unique<BuiltinBackend>(ctx.model, it->second.first));
}

}  // namespace plumb::backends
