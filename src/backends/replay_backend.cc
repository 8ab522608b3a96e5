// replay/<file>: answers each item from stored outputs, so replies produced elsewhere (another
// harness, a published results table) can be scored by plumb. JSONL (one object per line) or
// CSV with a header; the item id column is `id`, the reply `text`, and `epoch` and `turn` are
// used when present (--backend-option id=COL, text=COL, epoch=COL, turn=COL). A missing item
// is an error for that item only.
#include <fmt/format.h>

#include <fstream>
#include <map>
#include <sstream>
#include <tuple>

#include "backends/backends.h"
#include "plumb/csv.h"
#include "plumb/json.h"
#include "plumb/text.h"

namespace plumb::backends {

using Key = std::tuple<std::string, int, int>;  // item id, epoch, turn

class ReplayBackend final : public Backend {
 public:
  ReplayBackend(std::string id, std::string file, std::map<Key, Completion> replies, bool has_epoch,
                bool has_turn)
      : id_(std::move(id)),
        file_(std::move(file)),
        replies_(std::move(replies)),
        has_epoch_(has_epoch),
        has_turn_(has_turn) {}

  std::string Id() const override { return id_; }

  void Submit(ModelCall call, Done done) override {
    const CallReport report{1, 0, 0};
    Key key{call.hints.item_id, has_epoch_ ? call.hints.epoch : 0, has_turn_ ? call.hints.turn : 0};
    auto it = replies_.find(key);
    if (it == replies_.end() || (!has_turn_ && call.hints.turn > 0)) {
      done(InvalidArgument(
               fmt::format("replay: no stored output for item '{}' (epoch {}, turn {}) in {}",
                           call.hints.item_id, call.hints.epoch, call.hints.turn, file_)),
           report);
      return;
    }
    done(it->second, report);
  }

 private:
  std::string id_;
  std::string file_;
  std::map<Key, Completion> replies_;
  bool has_epoch_;
  bool has_turn_;
};

namespace {

Result<int> IntField(const Json& v, const std::string& where, const std::string& name) {
  if (v.is_number_integer()) return v.get<int>();
  if (v.is_string()) {
    try {
      size_t used = 0;
      int n = std::stoi(v.get<std::string>(), &used);
      if (used == v.get<std::string>().size()) return n;
    } catch (const std::exception&) {
    }
  }
  return InvalidArgument(fmt::format("{}: field '{}' must be an integer", where, name));
}

}  // namespace

Result<std::unique_ptr<Backend>> MakeReplayBackend(const BackendContext& ctx) {
  PLUMB_RETURN_IF_ERROR(
      CheckBackendOptions(ctx, {"id", "text", "epoch", "turn", "epochs", "tool_calls"}));
  auto opt = [&](const char* key, const char* fallback) {
    auto it = ctx.options.find(key);
    return it == ctx.options.end() ? std::string(fallback) : it->second;
  };
  const std::string id_col = opt("id", "id"), text_col = opt("text", "text");
  const std::string epoch_col = opt("epoch", "epoch"), turn_col = opt("turn", "turn");
  const std::string calls_col = opt("tool_calls", "tool_calls");
  // epochs=file_order: several rows of one item are its epochs 0, 1, ... in the order of the
  // file (published outputs such as Emergent Misalignment's CSVs hold many answers per question
  // and no epoch column).
  const std::string epochs_mode = opt("epochs", "column");
  if (epochs_mode != "column" && epochs_mode != "file_order") {
    return InvalidArgument(fmt::format(
        "--backend-option epochs='{}': must be column (an epoch column, the default) or "
        "file_order (rows of an item are its epochs in file order)",
        QuoteInput(epochs_mode, 40)));
  }
  const bool file_order = epochs_mode == "file_order";
  const std::string file = ctx.model;
  if (file.empty())
    return InvalidArgument(
        "model spec 'replay/': name the stored-output file, e.g. replay/outputs.jsonl");
  // Rows as (object, "file:line").
  std::vector<std::pair<Json, std::string>> rows;
  bool csv = file.size() >= 4 && file.compare(file.size() - 4, 4, ".csv") == 0;
  std::ifstream in(file, std::ios::binary);
  if (!in) return NotFound(fmt::format("replay: cannot open '{}'", file));
  std::stringstream ss;
  ss << in.rdbuf();
  // CSV cells are checked one by one (the message names the column); JSON lines by the parser.
  Result<std::string> read = csv ? Result<std::string>(ss.str()) : ReadTextFile(file);
  if (!read) return read.error();
  const std::string text = std::move(*read);
  if (csv) {
    PLUMB_ASSIGN_OR_RETURN(auto parsed, ParseCsv(text, file));
    if (parsed.empty()) return InvalidArgument(file + ": no header row");
    const auto& header = parsed[0].fields;
    for (size_t r = 1; r < parsed.size(); ++r) {
      if (parsed[r].fields.size() != header.size()) {
        return InvalidArgument(fmt::format("{}:{}: {} fields, but the header has {}", file,
                                           parsed[r].line, parsed[r].fields.size(), header.size()));
      }
      Json obj = Json::object();
      for (size_t c = 0; c < header.size(); ++c) obj[header[c]] = parsed[r].fields[c];
      rows.emplace_back(std::move(obj), fmt::format("{}:{}", file, parsed[r].line));
    }
  } else {
    std::istringstream lines(text);
    std::string line;
    for (int n = 1; std::getline(lines, line); ++n) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (line.find_first_not_of(" \t") == std::string::npos) continue;
      std::string where = fmt::format("{}:{}", file, n);
      PLUMB_ASSIGN_OR_RETURN(Json obj, ParseJsonStrict(line, where));
      if (!obj.is_object()) return InvalidArgument(where + ": each line must be a JSON object");
      rows.emplace_back(std::move(obj), where);
    }
  }
  if (rows.empty()) return InvalidArgument(fmt::format("replay: '{}' holds no outputs", file));
  bool has_epoch = rows[0].first.contains(epoch_col);
  bool has_turn = rows[0].first.contains(turn_col);
  if (file_order && has_epoch) {
    return InvalidArgument(fmt::format(
        "{}: --backend-option epochs=file_order, but the rows have an epoch column '{}': use one "
        "or the other",
        rows[0].second, epoch_col));
  }
  std::map<std::pair<std::string, int>, int> seen;  // (item, turn) -> rows so far
  std::map<Key, Completion> texts;
  for (const auto& [row, where] : rows) {
    if (!row.contains(id_col))
      return InvalidArgument(
          fmt::format("{}: field '{}' is missing (see --backend-option id=COLUMN)", where, id_col));
    // A stored agent turn may hold tool calls: a list of {id?, name, arguments} (in CSV, that
    // list as JSON text).
    std::vector<ToolCall> calls;
    if (row.contains(calls_col) && !row[calls_col].is_null() &&
        !(row[calls_col].is_string() && row[calls_col].get<std::string>().empty())) {
      Json list = row[calls_col];
      if (list.is_string()) {
        PLUMB_ASSIGN_OR_RETURN(list, ParseJsonStrict(list.get<std::string>(), where));
      }
      if (!list.is_array()) {
        return InvalidArgument(
            fmt::format("{}: field '{}' must be a list of tool calls", where, calls_col));
      }
      for (const auto& entry : list) {
        std::optional<ToolCall> call = LooseToolCall(entry, calls.size());
        if (!call) {
          return InvalidArgument(
              fmt::format("{}: field '{}': each tool call needs a string 'name' (or function.name)",
                          where, calls_col));
        }
        calls.push_back(std::move(*call));
      }
    }
    bool has_text = row.contains(text_col) && row[text_col].is_string();
    if (!has_text && (calls.empty() || (row.contains(text_col) && !row[text_col].is_null()))) {
      return InvalidArgument(fmt::format(
          "{}: field '{}' must be a string (see --backend-option text=COLUMN)", where, text_col));
    }
    const Json& idv = row[id_col];
    std::string id = idv.is_string() ? idv.get<std::string>() : DumpJson(idv);
    int epoch = 0, turn = 0;
    if (has_epoch) {
      PLUMB_ASSIGN_OR_RETURN(epoch, IntField(row.value(epoch_col, Json()), where, epoch_col));
    }
    if (has_turn) {
      PLUMB_ASSIGN_OR_RETURN(turn, IntField(row.value(turn_col, Json()), where, turn_col));
    }
    if (file_order) epoch = seen[{id, turn}]++;
    Completion c;
    if (has_text) c.text = row[text_col].get<std::string>();
    c.tool_calls = std::move(calls);
    c.finish_reason = "replay";
    if (!texts.emplace(Key{id, epoch, turn}, std::move(c)).second) {
      return InvalidArgument(fmt::format("{}: a second output for item '{}' (epoch {}, turn {})",
                                         where, id, epoch, turn));
    }
  }
  return std::unique_ptr<Backend>(std::make_unique<ReplayBackend>(
      "replay@1", file, std::move(texts), has_epoch || file_order, has_turn));
}

}  // namespace plumb::backends

namespace plumb {

std::unique_ptr<Backend> MakeStoredRepliesBackend(
    std::string id, std::map<std::tuple<std::string, int, int>, Completion> replies) {
  return std::make_unique<backends::ReplayBackend>(id, "the stored run", std::move(replies), true,
                                                   true);
}

}  // namespace plumb
