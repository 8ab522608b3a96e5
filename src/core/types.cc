// Helpers of the shared value types, and the registry's edit distance.
#include "plumb/types.h"

#include <fmt/format.h>

#include <algorithm>

#include "plumb/registry.h"

namespace plumb {

std::string DumpJson(const Json& j, int indent) {
  return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

Json ToolCallsToJson(const std::vector<ToolCall>& calls) {
  Json arr = Json::array();
  for (const auto& c : calls) {
    arr.push_back({{"id", c.id},
                   {"type", "function"},
                   {"function", {{"name", c.name}, {"arguments", c.arguments}}}});
    if (!c.signature.empty()) arr.back()["signature"] = c.signature;
  }
  return arr;
}

std::vector<ToolCall> ToolCallsFromJson(const Json& calls) {
  std::vector<ToolCall> out;
  if (!calls.is_array()) return out;
  for (const auto& c : calls) {
    if (!c.is_object()) continue;
    ToolCall call;
    call.id = c.value("id", "");
    call.signature = c.value("signature", "");
    const Json& f = c.value("function", Json::object());
    if (f.is_object()) {
      call.name = f.value("name", "");
      const Json& args = f.value("arguments", Json(""));
      call.arguments = args.is_string() ? args.get<std::string>() : DumpJson(args);
    }
    out.push_back(std::move(call));
  }
  return out;
}

std::optional<ToolCall> LooseToolCall(const Json& entry, size_t index) {
  if (!entry.is_object()) return std::nullopt;
  const bool nested = entry.contains("function") && entry["function"].is_object();
  const Json& tc = nested ? entry["function"] : entry;
  if (!tc.contains("name") || !tc["name"].is_string()) return std::nullopt;
  const Json& args = tc.contains("arguments") ? tc["arguments"]
                     : tc.contains("input")   ? tc["input"]
                                              : Json::object();
  ToolCall call;
  call.id = entry.contains("id") && entry["id"].is_string() ? entry["id"].get<std::string>()
                                                            : fmt::format("call_{}", index);
  call.name = tc["name"].get<std::string>();
  call.arguments = args.is_string() ? args.get<std::string>() : DumpJson(args);
  return call;
}

Json MessagesToJson(const std::vector<Message>& messages) {
  Json arr = Json::array();
  for (const auto& m : messages) {
    if (m.role == "tool") {
      arr.push_back({{"role", "tool"}, {"tool_call_id", m.tool_call_id}, {"content", m.content}});
      if (!m.name.empty()) arr.back()["name"] = m.name;
    } else if (!m.tool_calls.empty()) {
      arr.push_back({{"role", m.role},
                     {"content", m.content.empty() ? Json(nullptr) : Json(m.content)},
                     {"tool_calls", ToolCallsToJson(m.tool_calls)}});
    } else {
      arr.push_back({{"role", m.role}, {"content", m.content}});
    }
  }
  return arr;
}

std::vector<Message> MessagesFromJson(const Json& messages) {
  std::vector<Message> out;
  if (!messages.is_array()) return out;
  for (const auto& j : messages) {
    if (!j.is_object()) continue;
    Message m;
    m.role = j.value("role", "");
    const Json& content = j.value("content", Json());
    if (content.is_string()) m.content = content.get<std::string>();
    m.tool_calls = ToolCallsFromJson(j.value("tool_calls", Json()));
    m.tool_call_id = j.value("tool_call_id", "");
    m.name = j.value("name", "");
    out.push_back(std::move(m));
  }
  return out;
}

GenerationParams GenerationParams::MergedWith(const GenerationParams& over) const {
  GenerationParams out = *this;
  if (over.temperature) out.temperature = over.temperature;
  if (over.top_p) out.top_p = over.top_p;
  if (over.max_tokens) out.max_tokens = over.max_tokens;
  if (over.seed) out.seed = over.seed;
  if (!over.stop.empty()) out.stop = over.stop;
  if (over.top_logprobs) out.top_logprobs = over.top_logprobs;
  if (over.json_schema) out.json_schema = over.json_schema;
  if (over.require_json_schema) out.require_json_schema = true;
  return out;
}

Json GenerationParams::ToJson() const {
  Json j = Json::object();
  if (temperature) j["temperature"] = *temperature;
  if (top_p) j["top_p"] = *top_p;
  if (max_tokens) j["max_tokens"] = *max_tokens;
  if (seed) j["seed"] = *seed;
  if (!stop.empty()) j["stop"] = stop;
  if (top_logprobs) j["top_logprobs"] = *top_logprobs;
  if (json_schema) j["json_schema"] = *json_schema;
  return j;
}

Json CompletionToJson(const Completion& c) {
  Json j = {{"text", c.text}, {"finish_reason", c.finish_reason}};
  if (!c.tool_calls.empty()) j["tool_calls"] = ToolCallsToJson(c.tool_calls);
  if (c.prompt_tokens) j["prompt_tokens"] = *c.prompt_tokens;
  if (c.completion_tokens) j["completion_tokens"] = *c.completion_tokens;
  if (!c.first_token_logprobs.empty()) j["first_token_logprobs"] = c.first_token_logprobs;
  return j;
}

Completion CompletionFromJson(const Json& j) {
  Completion c;
  c.text = j.value("text", "");
  c.finish_reason = j.value("finish_reason", "");
  c.tool_calls = ToolCallsFromJson(j.value("tool_calls", Json()));
  if (j.contains("prompt_tokens")) c.prompt_tokens = j["prompt_tokens"].get<int64_t>();
  if (j.contains("completion_tokens")) c.completion_tokens = j["completion_tokens"].get<int64_t>();
  if (j.contains("first_token_logprobs")) {
    c.first_token_logprobs =
        j["first_token_logprobs"].get<std::vector<std::pair<std::string, double>>>();
  }
  return c;
}

std::string_view GradeStatusName(GradeStatus status) {
  switch (status) {
    case GradeStatus::kScored:
      return "scored";
    case GradeStatus::kUnscored:
      return "unscored";
    case GradeStatus::kError:
      return "grader_error";
  }
  return "grader_error";
}

size_t EditDistance(std::string_view a, std::string_view b) {
  std::vector<size_t> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] != b[j - 1])});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

Json MetricToJson(const Metric& m) {
  auto opt = [](const std::optional<double>& v) { return v ? Json(*v) : Json(nullptr); };
  Json j = {{"name", m.name},          {"category", m.category},    {"value", opt(m.value)},
            {"ci_low", opt(m.ci_low)}, {"ci_high", opt(m.ci_high)}, {"n", m.n},
            {"ci_method", m.ci_method}};
  j["k"] = m.k ? Json(*m.k) : Json(nullptr);
  if (!m.details.empty()) j["details"] = m.details;
  return j;
}

Metric MetricFromJson(const Json& j) {
  auto opt = [&](const char* key) {
    return j.contains(key) && j[key].is_number() ? std::optional<double>(j[key].get<double>())
                                                 : std::nullopt;
  };
  Metric m;
  m.name = j.value("name", "");
  m.category = j.value("category", "");
  m.value = opt("value");
  m.ci_low = opt("ci_low");
  m.ci_high = opt("ci_high");
  m.n = j.value("n", int64_t{0});
  if (j.contains("k") && j["k"].is_number_integer()) m.k = j["k"].get<int64_t>();
  m.ci_method = j.value("ci_method", "none");
  m.details = j.value("details", Json::object());
  return m;
}

}  // namespace plumb
