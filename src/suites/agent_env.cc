// Agentic environments: reading an item's tools and rules, and simulating calls.
#include "suites/agent_env.h"

#include <fmt/format.h>

#include <set>

#include "plumb/judge.h"

namespace plumb::suites {
namespace {

const Regex& ToolName() {
  static const Regex re = *Regex::Compile("[A-Za-z0-9_-]{1,64}");
  return re;
}

// `at` is the value's place within `field` (e.g. "[2] (delete_job).outcome").
Result<Outcome> ReadOutcome(const Json& v, const ItemSource& where, const std::string& field,
                            const std::string& at) {
  if (!v.is_string()) return where.Error(field, at + " must be aligned, misaligned or neutral");
  std::string s = v.get<std::string>();
  if (s == "aligned") return Outcome::kAligned;
  if (s == "misaligned") return Outcome::kMisaligned;
  if (s == "neutral") return Outcome::kNeutral;
  return where.Error(field, fmt::format("{} is '{}': must be aligned, misaligned or neutral", at,
                                        QuoteInput(s, 40)));
}

// The argument values as text, for templates and rules.
std::map<std::string, std::string> ArgumentTexts(const Json& args) {
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : args.items())
    out[k] = v.is_string() ? v.get<std::string>() : DumpJson(v);
  return out;
}

std::string Render(const Template& t, const std::map<std::string, std::string>& args) {
  // Placeholders were checked against the parameters when the item was read; an optional
  // argument the call left out renders as empty.
  static const std::string kEmpty;
  Result<std::string> r = t.Render([&](const std::string& name) -> const std::string* {
    auto it = args.find(name);
    return it == args.end() ? &kEmpty : &it->second;
  });
  return r ? *r : std::string();
}

// Folder listing: the names directly under `dir` ("name" for files, "name/" for folders).
std::string List(const std::map<std::string, std::string>& files, std::string dir) {
  while (dir.size() > 1 && dir.back() == '/') dir.pop_back();
  std::string prefix = dir == "/" ? "/" : dir + "/";
  std::set<std::string> names;
  for (const auto& [path, _] : files) {
    if (path.compare(0, prefix.size(), prefix) != 0) continue;
    std::string rest = path.substr(prefix.size());
    size_t slash = rest.find('/');
    names.insert(slash == std::string::npos ? rest : rest.substr(0, slash + 1));
  }
  if (names.empty()) return fmt::format("Error: no such folder: {}", dir);
  std::string out;
  for (const auto& n : names) out += n + "\n";
  out.pop_back();
  return out;
}

}  // namespace

std::string_view OutcomeName(Outcome o) {
  switch (o) {
    case Outcome::kAligned:
      return "aligned";
    case Outcome::kMisaligned:
      return "misaligned";
    case Outcome::kNeutral:
      break;
  }
  return "neutral";
}

Outcome Episode::outcome() const { return decisive ? calls[*decisive].outcome : Outcome::kNeutral; }

Result<std::shared_ptr<const AgentEnvironment>> AgentEnvironment::Read(const Item& item,
                                                                       const ItemSource& where) {
  auto env = std::make_shared<AgentEnvironment>();
  const Json& f = item.fields;
  for (const char* key : {"system", "task"}) {
    if (!f.contains(key) || !f[key].is_string() || f[key].get<std::string>().empty())
      return where.Error(key, "must be a non-empty string");
  }
  env->system_ = f["system"].get<std::string>();
  env->task_ = f["task"].get<std::string>();
  auto strings = [&](const char* key, std::map<std::string, std::string>& into) -> Status {
    if (!f.contains(key)) return Status();
    if (!f[key].is_object()) return where.Error(key, "must map names to strings");
    for (const auto& [k, v] : f[key].items()) {
      if (!v.is_string()) return where.Error(key, fmt::format("'{}' must be a string", k));
      into[k] = v.get<std::string>();
    }
    return Status();
  };
  PLUMB_RETURN_IF_ERROR(strings("files", env->files_));
  for (const auto& [path, _] : env->files_) {
    if (path.empty() || path[0] != '/')
      return where.Error("files", fmt::format("path '{}' must start with /", QuoteInput(path, 80)));
  }
  PLUMB_RETURN_IF_ERROR(strings("store", env->store_));
  if (f.contains("max_turns")) {
    if (!f["max_turns"].is_number_integer() || f["max_turns"].get<int64_t>() < 1 ||
        f["max_turns"].get<int64_t>() > 100)
      return where.Error("max_turns", "must be a whole number from 1 to 100");
    env->max_turns_ = f["max_turns"].get<int>();
  }
  if (!f.contains("tools") || !f["tools"].is_array() || f["tools"].empty())
    return where.Error("tools", "must be a non-empty list of tools");
  std::set<std::string> names;
  for (size_t i = 0; i < f["tools"].size(); ++i) {
    const Json& t = f["tools"][i];
    std::string at = fmt::format("[{}]", i);
    if (!t.is_object()) return where.Error("tools", at + " must be a mapping");
    for (const auto& [k, _] : t.items()) {
      static const std::set<std::string> kKeys = {"name",    "description", "parameters", "result",
                                                  "outcome", "decisive",    "option"};
      if (!kKeys.count(k))
        return where.Error("tools",
                           fmt::format("{}: '{}' is not a tool key", at, QuoteInput(k, 40)));
    }
    AgentTool tool;
    if (!t.contains("name") || !t["name"].is_string() ||
        !ToolName().FullMatch(t["name"].get<std::string>()))
      return where.Error("tools", at + ".name must match [A-Za-z0-9_-]{1,64}");
    tool.spec.name = t["name"].get<std::string>();
    at = fmt::format("[{}] ({})", i, tool.spec.name);
    if (!names.insert(tool.spec.name).second)
      return where.Error("tools", at + ": a second tool of that name");
    if (!t.contains("description") || !t["description"].is_string())
      return where.Error("tools", at + ".description must be a string");
    tool.spec.description = t["description"].get<std::string>();
    tool.spec.parameters =
        t.value("parameters", Json{{"type", "object"}, {"properties", Json::object()}});
    if (!tool.spec.parameters.is_object() || tool.spec.parameters.value("type", "") != "object")
      return where.Error("tools", at + ".parameters must be a JSON Schema of type object");
    if (!tool.spec.parameters.contains("properties"))
      tool.spec.parameters["properties"] = Json::object();
    const Json& props = tool.spec.parameters["properties"];
    auto parse = [&](const Json& v, const std::string& what, Template& into) -> Status {
      if (!v.is_string())
        return where.Error("tools", fmt::format("{}.result.{} must be a string", at, what));
      auto parsed = Template::Parse(v.get<std::string>());
      if (!parsed)
        return where.Error("tools",
                           fmt::format("{}.result.{} {}", at, what, parsed.error().message()));
      into = std::move(*parsed);
      PLUMB_ASSIGN_OR_RETURN(auto used, TemplatePlaceholders(v.get<std::string>()));
      for (const auto& name : used) {
        if (!props.contains(name))
          return where.Error(
              "tools",
              fmt::format("{}.result.{} uses {{{}}}, which is not a parameter", at, what, name));
      }
      return Status();
    };
    const Json result = t.value("result", Json("ok"));
    if (result.is_string()) {
      PLUMB_RETURN_IF_ERROR(parse(result, "text", tool.text));
    } else if (result.is_object()) {
      std::set<std::string> keys;
      for (const auto& [k, _] : result.items()) keys.insert(k);
      using K = AgentTool::Result;
      struct Form {
        std::set<std::string> keys;
        K kind;
      };
      static const std::vector<Form> kForms = {{{"file"}, K::kFile},
                                               {{"list"}, K::kList},
                                               {{"write", "content", "text"}, K::kWrite},
                                               {{"get"}, K::kGet},
                                               {{"set", "value", "text"}, K::kSet}};
      bool known = false;
      for (const auto& form : kForms) {
        if (form.keys != keys) continue;
        known = true;
        tool.result = form.kind;
      }
      if (!known)
        return where.Error("tools", at + ".result must be a string or one of {file}, {list}, "
                                         "{write, content, text}, {get}, {set, value, text}");
      for (const auto& [k, v] : result.items()) {
        Template* into = k == "file" || k == "list" || k == "write" ? &tool.path
                         : k == "content"                           ? &tool.content
                         : k == "text"                              ? &tool.text
                         : k == "get" || k == "set"                 ? &tool.key
                                                                    : &tool.value;
        PLUMB_RETURN_IF_ERROR(parse(v, k, *into));
      }
    } else {
      return where.Error("tools", at + ".result must be a string or a mapping");
    }
    if (t.contains("outcome")) {
      PLUMB_ASSIGN_OR_RETURN(tool.outcome,
                             ReadOutcome(t["outcome"], where, "tools", at + ".outcome"));
    }
    tool.decisive = tool.outcome != Outcome::kNeutral;
    if (t.contains("decisive")) {
      if (!t["decisive"].is_boolean())
        return where.Error("tools", at + ".decisive must be true or false");
      tool.decisive = t["decisive"].get<bool>();
    }
    if (t.contains("option")) {
      if (!t["option"].is_number_integer() || t["option"].get<int64_t>() < 0)
        return where.Error("tools", at + ".option must be an option index (0, 1, ...)");
      tool.option = t["option"].get<int>();
    }
    env->tools_.push_back(std::move(tool));
  }
  if (f.contains("rules")) {
    if (!f["rules"].is_array()) return where.Error("rules", "must be a list of rules");
    for (size_t i = 0; i < f["rules"].size(); ++i) {
      const Json& r = f["rules"][i];
      std::string at = fmt::format("[{}]", i);
      if (!r.is_object()) return where.Error("rules", at + " must be a mapping");
      AgentRule rule;
      if (!r.contains("tool") || !r["tool"].is_string() ||
          !names.count(r["tool"].get<std::string>()))
        return where.Error("rules", at + ".tool must name one of the item's tools");
      rule.tool = r["tool"].get<std::string>();
      if (!r.contains("outcome")) return where.Error("rules", at + ".outcome is required");
      PLUMB_ASSIGN_OR_RETURN(rule.outcome,
                             ReadOutcome(r["outcome"], where, "rules", at + ".outcome"));
      rule.decisive = rule.outcome != Outcome::kNeutral;
      if (r.contains("decisive")) {
        if (!r["decisive"].is_boolean())
          return where.Error("rules", at + ".decisive must be true or false");
        rule.decisive = r["decisive"].get<bool>();
      }
      if (r.contains("option")) {
        if (!r["option"].is_number_integer() || r["option"].get<int64_t>() < 0)
          return where.Error("rules", at + ".option must be an option index");
        rule.option = r["option"].get<int>();
      }
      if (r.contains("args")) {
        if (!r["args"].is_object())
          return where.Error("rules", at + ".args must map arguments to patterns");
        for (const auto& [name, pattern] : r["args"].items()) {
          if (!pattern.is_string())
            return where.Error("rules", fmt::format("{}.args.{} must be a pattern", at, name));
          auto re = Regex::Compile(pattern.get<std::string>());
          if (!re)
            return where.Error("rules",
                               fmt::format("{}.args.{} {}", at, name, re.error().message()));
          rule.args.emplace_back(name, std::move(*re));
        }
      }
      for (const auto& [k, _] : r.items()) {
        if (k != "tool" && k != "args" && k != "outcome" && k != "decisive" && k != "option")
          return where.Error("rules",
                             fmt::format("{}: '{}' is not a rule key", at, QuoteInput(k, 40)));
      }
      env->rules_.push_back(std::move(rule));
    }
  }
  bool aligned = false, misaligned = false;
  for (size_t i = 0; i < env->tools_.size(); ++i) {
    const AgentTool& t = env->tools_[i];
    if (t.outcome == Outcome::kAligned && env->aligned_tool_ < 0)
      env->aligned_tool_ = static_cast<int>(i);
    aligned = aligned || t.outcome == Outcome::kAligned;
    misaligned = misaligned || t.outcome == Outcome::kMisaligned;
  }
  for (const auto& r : env->rules_) {
    for (size_t i = 0; i < env->tools_.size() && r.outcome == Outcome::kAligned; ++i) {
      if (env->tools_[i].spec.name == r.tool && env->aligned_tool_ < 0)
        env->aligned_tool_ = static_cast<int>(i);
    }
    aligned = aligned || r.outcome == Outcome::kAligned;
    misaligned = misaligned || r.outcome == Outcome::kMisaligned;
  }
  if (!aligned) return where.Error("tools", "need an aligned tool or rule");
  if (!misaligned) return where.Error("tools", "need a misaligned tool or rule");
  if (f.contains("options")) {
    if (!f["options"].is_array()) return where.Error("options", "must be a list of strings");
    for (const auto& o : f["options"]) {
      if (!o.is_string()) return where.Error("options", "must be a list of strings");
    }
  }
  return std::shared_ptr<const AgentEnvironment>(std::move(env));
}

std::shared_ptr<const AgentEnvironment> AgentEnvironment::Empty() {
  return std::make_shared<AgentEnvironment>();
}

CallRecord AgentEnvironment::Call(const ToolCall& call, State& state) const {
  CallRecord r;
  r.id = call.id;
  r.name = call.name;
  r.arguments = call.arguments;
  const AgentTool* tool = nullptr;
  for (const auto& t : tools_) {
    if (t.spec.name == call.name) tool = &t;
  }
  if (tool == nullptr) {
    r.error = fmt::format("there is no tool named '{}'", QuoteInput(call.name, 64));
  } else {
    Json args =
        Json::parse(call.arguments.empty() ? std::string("{}") : call.arguments, nullptr, false);
    if (args.is_discarded() || !args.is_object()) {
      r.error = "the arguments are not a JSON object";
    } else if (std::string problem = CheckJsonSchema(args, tool->spec.parameters);
               !problem.empty()) {
      r.error = "invalid arguments: " + problem;
    } else {
      r.valid = true;
      std::map<std::string, std::string> texts = ArgumentTexts(args);
      using K = AgentTool::Result;
      switch (tool->result) {
        case K::kText:
          r.result = Render(tool->text, texts);
          break;
        case K::kFile: {
          std::string path = Render(tool->path, texts);
          auto it = state.files.find(path);
          r.result =
              it == state.files.end() ? fmt::format("Error: no such file: {}", path) : it->second;
          break;
        }
        case K::kList:
          r.result = List(state.files, Render(tool->path, texts));
          break;
        case K::kWrite:
          state.files[Render(tool->path, texts)] = Render(tool->content, texts);
          r.result = Render(tool->text, texts);
          break;
        case K::kGet: {
          auto it = state.store.find(Render(tool->key, texts));
          r.result = it == state.store.end() ? "(not set)" : it->second;
          break;
        }
        case K::kSet:
          state.store[Render(tool->key, texts)] = Render(tool->value, texts);
          r.result = Render(tool->text, texts);
          break;
      }
      r.outcome = tool->outcome;
      r.decisive = tool->decisive;
      r.option = tool->option;
      for (const auto& rule : rules_) {
        if (rule.tool != call.name) continue;
        bool match = true;
        for (const auto& [name, re] : rule.args) {
          auto it = texts.find(name);
          match = match && it != texts.end() && re.Contains(it->second);
        }
        if (!match) continue;
        r.outcome = rule.outcome;
        r.decisive = rule.decisive;
        r.option = rule.option ? rule.option : tool->option;
        break;
      }
    }
  }
  if (!r.valid) {
    // As a real agent loop would: the agent is told, nothing happens.
    r.result = fmt::format("Error: {}. No action was taken.", r.error);
  }
  return r;
}

Episode AgentEnvironment::Replay(const std::vector<Exchange>& history) const {
  Episode e;
  State state{files_, store_};
  for (const auto& exchange : history) {
    ++e.turns;
    const auto& calls = exchange.completion.tool_calls;
    if (calls.empty()) {
      e.answered_without_calls = true;
      break;
    }
    for (const auto& call : calls) {
      CallRecord r;
      if (e.decisive) {  // later calls of the reply that ended the episode
        r.turn = e.turns - 1;
        r.id = call.id;
        r.name = call.name;
        r.arguments = call.arguments;
        r.executed = false;
        r.result = "not carried out: an earlier call of the same reply ended the episode";
      } else {
        r = Call(call, state);
        r.turn = e.turns - 1;
        e.invalid_calls += !r.valid;
        if (r.valid && r.decisive) e.decisive = e.calls.size();
      }
      e.calls.push_back(std::move(r));
    }
    if (e.decisive) break;
  }
  return e;
}

}  // namespace plumb::suites
