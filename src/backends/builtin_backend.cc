// builtin/<baseline>: reference answers that need no network. They reply with text, so their
// answers go through the same parsing and grading as a real model's. Without options to choose
// from, random/first/last answer "I don't know." (a constant that is never right).
// longest/shortest are answer-only baselines: they pick by the options' length alone, never
// reading the question (ties go to the option shown first).
#include <fmt/format.h>

#include <map>

#include "backends/backends.h"
#include "plumb/hash.h"
#include "plumb/json.h"

namespace plumb::backends {
namespace {

constexpr const char* kRefusal = "I'm sorry, but I can't help with that.";
// The constant answer to a question without options (open or short-answer items).
constexpr const char* kNoOptionsAnswer = "I don't know.";

enum class Baseline { kRandom, kFirst, kLast, kRefuse, kLongest, kShortest };

const std::map<std::string, std::pair<Baseline, const char*>>& Baselines() {
  static const std::map<std::string, std::pair<Baseline, const char*>> kTable = {
      {"random", {Baseline::kRandom, "a uniformly random option (seeded per sample)"}},
      {"first", {Baseline::kFirst, "always the first option label"}},
      {"last", {Baseline::kLast, "always the last option label"}},
      {"refuse", {Baseline::kRefuse, "always a refusal sentence"}},
      {"longest", {Baseline::kLongest, "the longest option (by characters), never the question"}},
      {"shortest", {Baseline::kShortest, "the shortest option, never the question"}},
  };
  return kTable;
}

// Arguments that fit a JSON Schema object: every property the schema lists (an enum's first
// value, or with `random` any of its values; "x" for strings, 0 for numbers, false for
// booleans, [] for arrays, {} for objects).
Json ArgumentsFor(const Json& schema, Rng& rng, bool random) {
  Json out = Json::object();
  const Json& props = schema.is_object() ? schema.value("properties", Json::object()) : Json();
  if (!props.is_object()) return out;
  for (const auto& [name, sub] : props.items()) {
    if (!sub.is_object()) continue;
    const Json& e = sub.value("enum", Json());
    if (e.is_array() && !e.empty()) {
      out[name] = e[random ? rng.Below(e.size()) : 0];
      continue;
    }
    std::string type = StringField(sub, "type", "string");
    if (type == "integer" || type == "number") {
      out[name] = 0;
    } else if (type == "boolean") {
      out[name] = false;
    } else if (type == "array") {
      out[name] = Json::array();
    } else if (type == "object") {
      out[name] = ArgumentsFor(sub, rng, random);
    } else {
      out[name] = "x";
    }
  }
  return out;
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
    if (!call.tools.empty()) {
      // An agent: the first or last tool as listed, or a random one, with arguments that fit
      // its schema.
      size_t pick = kind_ == Baseline::kLast ? call.tools.size() - 1 : 0;
      Rng rng(DeriveSeed(call.hints.seed, "builtin/" + name_ + "/tools", call.hints.turn));
      if (kind_ == Baseline::kRandom) pick = rng.Below(call.tools.size());
      const ToolSpec& tool = call.tools[pick];
      c.tool_calls.push_back(
          ToolCall{"call_0", tool.name,
                   DumpJson(ArgumentsFor(tool.parameters, rng, kind_ == Baseline::kRandom))});
      c.finish_reason = "tool_calls";
      done(std::move(c), report);
      return;
    }
    const auto& texts = call.hints.option_texts;
    // Options shown without labels (answer with the option's text) are answered with the text.
    const bool by_text = labels.empty() && !texts.empty();
    if (labels.empty() && !by_text) {
      c.text = kNoOptionsAnswer;
      done(std::move(c), report);
      return;
    }
    const size_t n = by_text ? texts.size() : labels.size();
    size_t pick = 0;
    if (kind_ == Baseline::kLast) pick = n - 1;
    if (kind_ == Baseline::kRandom) {
      Rng rng(DeriveSeed(call.hints.seed, "builtin/random", call.hints.turn));
      pick = rng.Below(n);
    }
    if ((kind_ == Baseline::kLongest || kind_ == Baseline::kShortest) && texts.size() == n) {
      for (size_t i = 1; i < texts.size(); ++i) {
        bool better = kind_ == Baseline::kLongest ? texts[i].size() > texts[pick].size()
                                                  : texts[i].size() < texts[pick].size();
        if (better) pick = i;
      }
    }
    c.text = "Answer: " + (by_text ? texts[pick] : labels[pick]);
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
