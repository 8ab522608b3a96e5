// Value types shared by suites, backends, graders, the runner and the store.
#ifndef PLUMB_TYPES_H_
#define PLUMB_TYPES_H_

#include <cstdint>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

namespace plumb {

using Json = nlohmann::json;

// Serialises `j` (indented when indent >= 0). Strings that are not valid UTF-8 are written with
// U+FFFD in place of the bad bytes instead of throwing: inputs are validated where they are read,
// and this keeps anything that slipped through (a server's error body) from aborting a run.
std::string DumpJson(const Json& j, int indent = -1);

// A tool a model may call: its name, what it does, and a JSON Schema object of its arguments.
struct ToolSpec {
  std::string name;
  std::string description;
  Json parameters = Json::object();
};

// One call a model made: the provider's id for it (or one plumb assigned), the tool and the
// arguments as the JSON text the model wrote. The text may not parse or fit the schema: that is
// the model's mistake, recorded and answered as such, never repaired.
struct ToolCall {
  std::string id;
  std::string name;
  std::string arguments;
  // An opaque token the provider requires back with the call in later turns (Gemini's
  // thoughtSignature); stored with the call, sent only to the provider that gave it.
  std::string signature;
};

// One chat message. Roles are "system", "user", "assistant" and "tool" (a call's result).
struct Message {
  std::string role;
  std::string content;
  std::vector<ToolCall> tool_calls;  // assistant: the calls it made (content may be empty)
  std::string tool_call_id;          // tool: the call this answers
  std::string name;                  // tool: the tool's name
};

// Messages in the OpenAI chat format, which is also how plumb stores a request: {role, content}
// and, for tool use, assistant "tool_calls" [{id, type: "function", function: {name,
// arguments}}] (content null when empty) and tool messages {role: "tool", tool_call_id,
// content}.
Json MessagesToJson(const std::vector<Message>& messages);
// Back from that format (as stored); entries that are not objects are skipped.
std::vector<Message> MessagesFromJson(const Json& messages);
Json ToolCallsToJson(const std::vector<ToolCall>& calls);
std::vector<ToolCall> ToolCallsFromJson(const Json& calls);
// One tool call as users store or script them (replay files, exec answers): flat {id?, name,
// arguments}, OpenAI's {id, type, function: {name, arguments}} or Anthropic's {id, name, input};
// arguments an object or JSON text. nullopt when it has no string name. A missing id becomes
// "call_<index>".
std::optional<ToolCall> LooseToolCall(const Json& entry, size_t index);

// Sampling parameters sent to a model. Unset fields are not sent, so the server default applies.
struct GenerationParams {
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int> max_tokens;
  std::optional<int64_t> seed;
  std::vector<std::string> stop;
  // Ask for the top-N log-probabilities of the first generated token (judges' logprob scoring).
  std::optional<int> top_logprobs;
  // A JSON Schema the reply should follow. Backends send it as structured-output mode where the
  // API is known to support it, or always when `require_json_schema` is set.
  std::optional<Json> json_schema;
  bool require_json_schema = false;

  // Fields set in `over` replace those of *this.
  GenerationParams MergedWith(const GenerationParams& over) const;
  // {"temperature":0,"max_tokens":120,...}; unset fields are omitted. Stored with every run.
  Json ToJson() const;
};

// Facts about the item that a real model never sees. Built-in baselines and the replay backend
// use them to answer; HTTP backends ignore them.
struct CallHints {
  std::string item_id;
  int epoch = 0;
  int turn = 0;
  uint64_t seed = 0;                       // per-sample seed derived from the run seed
  std::vector<std::string> option_labels;  // labels shown to the model, in order ("A", "B", ...)
  std::vector<std::string> option_texts;   // the options' texts as shown, in the same order
};

// One request to a model: the conversation so far plus parameters, and the tools it may call.
struct ModelCall {
  std::vector<Message> messages;
  GenerationParams params;
  CallHints hints;
  std::vector<ToolSpec> tools;  // empty: no tool use
  std::string tool_choice;      // with tools: "auto" (default) or "required"
};

// A model's reply and how it was obtained.
struct Completion {
  std::string text;
  std::vector<ToolCall> tool_calls;  // in the order the model made them
  std::string finish_reason;  // as the API reports it ("stop", "length", ...); "" when unknown
  std::optional<int64_t> prompt_tokens;
  std::optional<int64_t> completion_tokens;
  double latency_ms = 0;  // of the final, successful attempt
  int attempts = 1;       // 1 + number of retries
  // Top log-probabilities of the first token, when requested: (token, natural-log probability).
  std::vector<std::pair<std::string, double>> first_token_logprobs;
  bool cached = false;  // answered from the response cache, not by a new call
  bool batched = false;  // answered through a provider's batch API (batch pricing)
  std::string endpoint;  // of a pool: the base URL that answered ("" with one endpoint)
};

Json CompletionToJson(const Completion& c);
Completion CompletionFromJson(const Json& j);

// One benchmark item after loading: common fields plus kind-specific, validated `fields`.
struct Item {
  std::string id;
  std::string category;  // "" when the suite has no categories
  int line = 0;          // 1-based line in its data file, for error messages
  size_t record = 0;     // index of the data record it came from (expanded items share it)
  Json fields;           // kind-specific content (prompt, options, aligned, ...)
  Json metadata;         // free-form per-item metadata, passed to graders and stored
  bool scored = true;    // false: the item is kept but never enters a metric
  // Its own number of samples (the item field `samples`), used when the suite sets
  // `item_samples: true`; empty: the run's epochs.
  std::optional<int> samples;
};

// Result of one grader on one sample.
enum class GradeStatus {
  kScored,    // value holds the score
  kUnscored,  // a declared escape (e.g. a judge's REFUSAL): no score, counted apart
  kError,     // the grader could not decide; never a score
};

std::string_view GradeStatusName(GradeStatus status);

struct Grade {
  std::string grader;  // "choice@1"
  GradeStatus status = GradeStatus::kScored;
  std::optional<double> value;
  std::string label;  // e.g. the parsed option, "refusal"
  Json details = Json::object();
  std::string error;  // set when status is kError
};

struct MetricModel;  // plumb/stats.h

// An aggregate over samples, on a 0-100 scale for rates, with a 95% confidence interval.
struct Metric {
  std::string name;              // "aligned_rate"
  std::string category;          // "" for the whole suite
  std::optional<double> value;   // empty when undefined (no samples)
  std::optional<double> ci_low;  // 95% interval
  std::optional<double> ci_high;
  int64_t n = 0;             // denominator: samples (or items when clustered)
  std::optional<int64_t> k;  // numerator, for proportions
  std::string ci_method;     // "wilson", "bootstrap", "none"
  Json details = Json::object();
  // The per-cluster data behind the value, for paired comparisons; only on metrics computed in
  // this process (not stored).
  std::shared_ptr<const MetricModel> model;
};

// A metric as JSON (name, category, value, ci_low, ci_high, n, k, ci_method, details; no model)
// and back.
Json MetricToJson(const Metric& m);
Metric MetricFromJson(const Json& j);

}  // namespace plumb

#endif  // PLUMB_TYPES_H_
