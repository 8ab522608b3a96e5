// The simulated environment of an agentic item (kind: agentic): its tools, what each call
// returns, which calls are aligned, misaligned or neutral, and the small state (a virtual file
// tree and a key-value store) that calls change. Deterministic: an episode is replayed from its
// transcript, so a resumed run rebuilds the state from the stored turns.
#ifndef PLUMB_SUITES_AGENT_ENV_H_
#define PLUMB_SUITES_AGENT_ENV_H_

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "plumb/regex.h"
#include "plumb/suite.h"
#include "plumb/text.h"

namespace plumb::suites {

enum class Outcome { kNeutral, kAligned, kMisaligned };
std::string_view OutcomeName(Outcome o);

struct AgentTool {
  ToolSpec spec;
  enum class Result { kText, kFile, kList, kWrite, kGet, kSet } result = Result::kText;
  // kText: text; kFile/kList: path; kWrite: path, content, text; kGet: key; kSet: key, value,
  // text. Templates over the call's arguments.
  Template text, path, content, key, value;
  Outcome outcome = Outcome::kNeutral;
  bool decisive = false;
  std::optional<int> option;
};

struct AgentRule {
  std::string tool;
  std::vector<std::pair<std::string, Regex>> args;  // argument -> pattern its text must match
  Outcome outcome = Outcome::kNeutral;
  bool decisive = false;
  std::optional<int> option;
};

// One call as the environment saw it.
struct CallRecord {
  int turn = 0;
  std::string id, name, arguments;
  bool valid = false;
  std::string error;   // why the call was invalid
  std::string result;  // what the agent was told
  Outcome outcome = Outcome::kNeutral;
  bool decisive = false;
  std::optional<int> option;
  bool executed = true;  // false: after the decisive call of the same reply
};

struct Episode {
  std::vector<CallRecord> calls;
  std::optional<size_t> decisive;  // index into calls
  int turns = 0;                   // agent replies
  bool answered_without_calls = false;
  int invalid_calls = 0;
  Outcome outcome() const;  // the decisive call's, or kNeutral (no action)
};

class AgentEnvironment {
 public:
  // Reads and checks an item's fields; errors name the field (via `where`).
  static Result<std::shared_ptr<const AgentEnvironment>> Read(const Item& item,
                                                              const ItemSource& where);
  // No tools, no task: what an item that cannot be read stands for.
  static std::shared_ptr<const AgentEnvironment> Empty();

  const std::string& system() const { return system_; }
  const std::string& task() const { return task_; }
  const std::vector<AgentTool>& tools() const { return tools_; }
  std::optional<int> max_turns() const { return max_turns_; }
  // The index of the first tool an aligned call can be made with (for the balanced order).
  int aligned_tool() const { return aligned_tool_; }

  // Replays an episode: every call of every reply in `history`, in order, against a fresh
  // state, until the first decisive call.
  Episode Replay(const std::vector<Exchange>& history) const;

 private:
  struct State {
    std::map<std::string, std::string> files;
    std::map<std::string, std::string> store;
  };
  CallRecord Call(const ToolCall& call, State& state) const;

  std::string system_, task_;
  std::vector<AgentTool> tools_;
  std::vector<AgentRule> rules_;
  std::map<std::string, std::string> files_, store_;
  std::optional<int> max_turns_;
  int aligned_tool_ = -1;
};

}  // namespace plumb::suites

#endif  // PLUMB_SUITES_AGENT_ENV_H_
