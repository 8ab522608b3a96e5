// LLM-judge graders (kind: judge in grader.yaml): prompt building, reading the three output
// forms (score_0_100 with or without logprobs, json checked against a schema, labels), re-ask
// messages, and panel aggregation.
#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <mutex>
#include <set>
#include <sstream>

#include "plumb/hash.h"
#include "plumb/json.h"
#include "plumb/judge.h"
#include "plumb/text.h"

namespace plumb {
namespace {

enum class Panel { kMean, kMedian, kMajority };

struct Config {
  std::string id;
  int version = 1;
  std::string description;
  std::string tmpl;
  std::optional<std::string> system_prompt;
  JudgeGrader::Output output = JudgeGrader::Output::kScore0To100;
  bool logprobs = false;
  double min_mass = 0.25;
  std::vector<std::string> escapes;  // upper-case
  std::vector<std::string> labels;   // labels form, upper-case
  std::map<std::string, double> label_values;
  Json schema;              // json form
  std::string score_from;   // json form: field holding issue letters
  std::string score_field;  // json form: field holding a number
  double score_max = 10;
  std::map<std::string, double> deductions;
  Panel panel = Panel::kMean;
  int max_reasks = 1;
  GenerationParams params;
};

// The reply with surrounding whitespace, quotes, asterisks and a final period removed.
std::string Bare(const std::string& text) {
  std::string t = Trim(text);
  auto strip = [](char c) { return c == '"' || c == '\'' || c == '*' || c == '`' || c == '.'; };
  while (!t.empty() && strip(t.front())) t.erase(t.begin());
  while (!t.empty() && strip(t.back())) t.pop_back();
  return Trim(t);
}

std::optional<int> SmallInt(const std::string& s) {
  if (s.empty() || s.size() > 3 || !std::all_of(s.begin(), s.end(), ::isdigit)) return std::nullopt;
  int v = std::stoi(s);
  if (v > 100) return std::nullopt;
  return v;
}

std::string Shorten(const std::string& s) { return s.size() > 120 ? s.substr(0, 120) + "..." : s; }

class Judge final : public JudgeGrader {
 public:
  explicit Judge(Config c) : c_(std::move(c)) {}

  const std::string& id() const override { return c_.id; }
  int version() const override { return c_.version; }
  Output output() const override { return c_.output; }
  bool numeric() const override { return c_.output != Output::kLabels || !c_.label_values.empty(); }
  int max_reasks() const override { return c_.max_reasks; }
  const GenerationParams& params() const override { return c_.params; }

  Result<std::vector<Message>> BuildPrompt(const JudgeInput& in) const override {
    std::map<std::string, std::string> vars = {
        {"question", in.question}, {"answer", in.answer}, {"category", in.item.category}};
    for (const auto& [k, v] : in.item.fields.items()) {
      if (v.is_string()) vars["item." + k] = v.get<std::string>();
    }
    for (const auto& [k, v] : in.item.metadata.items()) {
      vars["metadata." + k] = v.is_string() ? v.get<std::string>() : DumpJson(v);
    }
    const std::string& tmpl = in.template_override ? *in.template_override : c_.tmpl;
    Result<std::string> user = RenderTemplate(tmpl, vars);
    if (!user) {
      return InvalidArgument(
          fmt::format("judge '{}': item '{}': {}", c_.id, in.item.id, user.error().message()));
    }
    std::vector<Message> out;
    if (c_.system_prompt) out.push_back(Message{"system", *c_.system_prompt});
    out.push_back(Message{"user", *user});
    return out;
  }

  Grade Read(const Completion& completion) const override {
    Grade g;
    g.grader = IdVersion();
    switch (c_.output) {
      case Output::kScore0To100:
        ReadScore(completion, g);
        break;
      case Output::kLabels:
        ReadLabel(completion.text, g);
        break;
      case Output::kJson:
        ReadJson(completion.text, g);
        break;
    }
    g.details["reply"] = Shorten(completion.text);
    return g;
  }

  std::string ReaskMessage(const Grade& unreadable) const override {
    std::string format;
    switch (c_.output) {
      case Output::kScore0To100:
        format = "only a whole number from 0 to 100";
        if (!c_.escapes.empty()) format += ", or one of: " + Join(c_.escapes, ", ");
        break;
      case Output::kLabels:
        format = "exactly one of: " + Join(c_.labels, ", ");
        break;
      case Output::kJson:
        format = "only the JSON object described above, with nothing before or after it";
        break;
    }
    return fmt::format("Your reply could not be read ({}). Reply again with {}.", unreadable.error,
                       format);
  }

  Grade Aggregate(const std::vector<Grade>& judgments) const override {
    Grade g;
    g.grader = IdVersion();
    Json each = Json::array();
    std::vector<double> values;
    std::map<std::string, int> labels, escapes;
    std::vector<std::string> errors;
    for (const auto& j : judgments) {
      each.push_back({{"judge", j.details.value("judge", "")},
                      {"status", std::string(GradeStatusName(j.status))},
                      {"value", j.value ? Json(*j.value) : Json(nullptr)},
                      {"label", j.label}});
      if (j.status == GradeStatus::kError) {
        errors.push_back(j.error);
      } else if (j.status == GradeStatus::kUnscored) {
        escapes[j.label]++;
      } else {
        if (j.value) values.push_back(*j.value);
        labels[j.label]++;
      }
    }
    g.details["judgments"] = each;
    if (c_.panel == Panel::kMajority && !labels.empty()) {
      int best = 0, ties = 0;
      for (const auto& [label, n] : labels) {
        if (n > best)
          best = n, ties = 1, g.label = label;
        else if (n == best)
          ++ties;
      }
      if (ties > 1) {
        g.status = GradeStatus::kUnscored;
        g.label = "tie";
        return g;
      }
      for (const auto& j : judgments) {
        if (j.status == GradeStatus::kScored && j.label == g.label && j.value) g.value = j.value;
      }
      return g;
    }
    if (!values.empty()) {
      std::sort(values.begin(), values.end());
      if (c_.panel == Panel::kMedian) {
        size_t n = values.size();
        g.value = n % 2 ? values[n / 2] : (values[n / 2 - 1] + values[n / 2]) / 2;
      } else {
        double sum = 0;
        for (double v : values) sum += v;
        g.value = sum / static_cast<double>(values.size());
      }
      if (labels.size() == 1) g.label = labels.begin()->first;
      return g;
    }
    if (!labels.empty()) {  // labels without values
      g.label = labels.begin()->first;
      return g;
    }
    if (!escapes.empty()) {
      g.status = GradeStatus::kUnscored;
      g.label = std::max_element(escapes.begin(), escapes.end(), [](const auto& a, const auto& b) {
                  return a.second < b.second;
                })->first;
      return g;
    }
    g.status = GradeStatus::kError;
    g.error = errors.empty() ? "no judgment" : errors.front();
    return g;
  }

 private:
  void ReadScore(const Completion& completion, Grade& g) const {
    if (c_.logprobs && !completion.first_token_logprobs.empty()) {
      LogprobScore s = ScoreFromLogprobs(completion.first_token_logprobs);
      g.details["method"] = "logprobs";
      g.details["mass"] = s.mass;
      if (!s.score || s.mass < c_.min_mass) {
        // Too little probability on numbers: the judge meant something else (CODE, REFUSAL).
        g.status = GradeStatus::kUnscored;
        g.label = EscapeIn(completion.text).value_or("low_mass");
        return;
      }
      g.value = *s.score;
      return;
    }
    // Without logprobs the number is read from the text; the method differs from the
    // probability-weighted one and is recorded as such.
    g.details["method"] = c_.logprobs ? "text (no logprobs returned)" : "text";
    std::string bare = Bare(completion.text);
    if (auto v = SmallInt(bare)) {
      g.value = *v;
      return;
    }
    if (auto escape = EscapeIn(completion.text)) {
      g.status = GradeStatus::kUnscored;
      g.label = *escape;
      return;
    }
    g.status = GradeStatus::kError;
    g.error =
        fmt::format("expected a number from 0 to 100, got '{}'", Shorten(Trim(completion.text)));
  }

  std::optional<std::string> EscapeIn(const std::string& text) const {
    std::string bare = ToUpper(Bare(text));
    for (const auto& e : c_.escapes) {
      if (bare == e) return e;
    }
    return std::nullopt;
  }

  void ReadLabel(const std::string& text, Grade& g) const {
    std::string bare = ToUpper(Bare(text));
    for (const auto& l : c_.labels) {
      if (bare != l) continue;
      g.label = l;
      if (c_.label_values.empty()) return;
      auto it = c_.label_values.find(l);
      if (it == c_.label_values.end()) {
        g.status = GradeStatus::kUnscored;  // a declared label without a value is an escape
      } else {
        g.value = it->second;
      }
      return;
    }
    g.status = GradeStatus::kError;
    g.error =
        fmt::format("expected one of {}, got '{}'", Join(c_.labels, ", "), Shorten(Trim(text)));
  }

  void ReadJson(const std::string& text, Grade& g) const {
    std::optional<std::string> raw = ExtractJsonObject(text);
    if (!raw) {
      g.status = GradeStatus::kError;
      g.error = "no JSON object in the reply";
      return;
    }
    Json value = Json::parse(*raw, nullptr, false);
    if (value.is_discarded()) {
      g.status = GradeStatus::kError;
      g.error = "the JSON object does not parse";
      return;
    }
    std::string problem = CheckJsonSchema(value, c_.schema);
    if (!problem.empty()) {
      g.status = GradeStatus::kError;
      g.error = "the JSON does not match the schema: " + problem;
      return;
    }
    g.details["judgment"] = value;
    if (!c_.score_from.empty()) {
      std::set<std::string> flagged;
      for (const auto& letter : value[c_.score_from]) flagged.insert(letter.get<std::string>());
      double total = 0;
      for (const auto& letter : flagged) {
        auto it = c_.deductions.find(letter);
        if (it == c_.deductions.end()) {
          g.status = GradeStatus::kError;
          g.error = fmt::format("'{}' lists '{}', which has no deduction", c_.score_from, letter);
          return;
        }
        total += it->second;
      }
      g.value = 100.0 * std::max(c_.score_max - total, 0.0) / c_.score_max;
      g.label = Join(std::vector<std::string>(flagged.begin(), flagged.end()), ",");
    } else if (!c_.score_field.empty()) {
      if (!value[c_.score_field].is_number()) {
        g.status = GradeStatus::kError;
        g.error = fmt::format("field '{}' is not a number", c_.score_field);
        return;
      }
      g.value = value[c_.score_field].get<double>();
    }
  }

  Config c_;
};

// Template placeholders a judge may use.
Status CheckJudgeTemplate(const std::string& tmpl, const std::string& where) {
  auto names = TemplatePlaceholders(tmpl);
  if (!names) return InvalidArgument(where + ": " + names.error().message());
  for (const auto& n : *names) {
    bool ok = n == "question" || n == "answer" || n == "category" || n.rfind("item.", 0) == 0 ||
              n.rfind("metadata.", 0) == 0;
    if (!ok) {
      return InvalidArgument(fmt::format(
          "{}: unknown placeholder '{{{}}}' (known: {{question}}, {{answer}}, {{category}}, "
          "{{item.FIELD}}, {{metadata.KEY}}; write '{{{{' for a literal brace)",
          where, n));
    }
  }
  return Status();
}

Result<std::vector<std::string>> UpperList(FieldReader& r, const std::string& key) {
  PLUMB_ASSIGN_OR_RETURN(auto list, r.OptStringList(key));
  std::vector<std::string> out;
  if (list) {
    for (const auto& s : *list) out.push_back(ToUpper(s));
  }
  return out;
}

}  // namespace

Result<std::unique_ptr<JudgeGrader>> LoadJudgeGrader(const std::filesystem::path& path) {
  PLUMB_ASSIGN_OR_RETURN(Document doc, LoadYamlFile(path));
  if (!doc.value.is_object())
    return InvalidArgument(path.string() + ": a grader manifest must be a mapping");
  FieldReader r(doc.value, doc.source);
  Config c;
  PLUMB_ASSIGN_OR_RETURN(c.id, r.String("id"));
  std::string folder = path.parent_path().filename().string();
  if (c.id != folder)
    return r.Error("id",
                   fmt::format("'{}' must equal the grader's folder name '{}'", c.id, folder));
  PLUMB_ASSIGN_OR_RETURN(auto version, r.OptInt("version"));
  if (version && *version < 1) return r.Error("version", "must be 1 or more");
  c.version = static_cast<int>(version.value_or(1));
  PLUMB_ASSIGN_OR_RETURN(std::string kind, r.String("kind"));
  if (kind != "judge")
    return r.Error("kind", "must be judge (rule graders are built in: see plumb list graders)");
  PLUMB_ASSIGN_OR_RETURN(auto description, r.OptString("description"));
  c.description = description.value_or("");
  PLUMB_ASSIGN_OR_RETURN(std::string prompt, r.String("prompt"));
  std::filesystem::path prompt_path = path.parent_path() / prompt;
  Result<std::string> prompt_text = ReadTextFile(prompt_path);
  if (!prompt_text && prompt_text.error().code() == StatusCode::kNotFound)
    return r.Error("prompt",
                   fmt::format("names '{}', which cannot be opened", prompt_path.string()));
  if (!prompt_text) return prompt_text.error();
  c.tmpl = std::move(*prompt_text);
  PLUMB_RETURN_IF_ERROR(CheckJudgeTemplate(c.tmpl, prompt_path.string()));
  PLUMB_ASSIGN_OR_RETURN(c.system_prompt, r.OptString("system_prompt"));

  PLUMB_ASSIGN_OR_RETURN(std::string output, r.String("output"));
  if (output == "score_0_100") {
    c.output = JudgeGrader::Output::kScore0To100;
  } else if (output == "json") {
    c.output = JudgeGrader::Output::kJson;
  } else if (output == "labels") {
    c.output = JudgeGrader::Output::kLabels;
  } else {
    return r.Error("output", "must be score_0_100, json or labels");
  }
  PLUMB_ASSIGN_OR_RETURN(auto logprobs, r.OptBool("logprobs"));
  c.logprobs = logprobs.value_or(false);
  if (c.logprobs && c.output != JudgeGrader::Output::kScore0To100) {
    return r.Error("logprobs", "applies to output: score_0_100 only");
  }
  PLUMB_ASSIGN_OR_RETURN(auto min_mass, r.OptNumber("min_mass"));
  if (min_mass && (*min_mass < 0 || *min_mass > 1))
    return r.Error("min_mass", "must be between 0 and 1");
  c.min_mass = min_mass.value_or(0.25);
  PLUMB_ASSIGN_OR_RETURN(c.escapes, UpperList(r, "escapes"));
  PLUMB_ASSIGN_OR_RETURN(c.labels, UpperList(r, "labels"));
  if (c.output == JudgeGrader::Output::kLabels && c.labels.empty())
    return r.Error("labels", "is required for output: labels");
  PLUMB_ASSIGN_OR_RETURN(auto values, r.OptObject("values"));
  if (values) {
    for (const auto& [label, _] : values->object().items()) {
      if (std::find(c.labels.begin(), c.labels.end(), ToUpper(label)) == c.labels.end()) {
        return values->Error(label, "is not one of the labels");
      }
      PLUMB_ASSIGN_OR_RETURN(auto v, values->OptNumber(label));
      c.label_values[ToUpper(label)] = *v;
    }
  }
  if (const Json* schema = r.Get("schema")) {
    if (!schema->is_object()) return r.Error("schema", "must be a JSON Schema mapping");
    c.schema = *schema;
  } else if (c.output == JudgeGrader::Output::kJson) {
    return r.Error("schema", "is required for output: json");
  }
  PLUMB_ASSIGN_OR_RETURN(auto score, r.OptObject("score"));
  if (score) {
    if (c.output != JudgeGrader::Output::kJson)
      return r.Error("score", "applies to output: json only");
    PLUMB_ASSIGN_OR_RETURN(auto from, score->OptString("from"));
    PLUMB_ASSIGN_OR_RETURN(auto field, score->OptString("field"));
    if (from.has_value() == field.has_value())
      return score->Error("from", "or 'field' is required (exactly one)");
    c.score_from = from.value_or("");
    c.score_field = field.value_or("");
    PLUMB_ASSIGN_OR_RETURN(auto max, score->OptNumber("max"));
    if (max && *max <= 0) return score->Error("max", "must be positive");
    c.score_max = max.value_or(10);
    PLUMB_ASSIGN_OR_RETURN(auto deductions, score->OptObject("deductions"));
    if (from && !deductions) return score->Error("deductions", "is required with 'from'");
    if (deductions) {
      for (const auto& [letter, _] : deductions->object().items()) {
        PLUMB_ASSIGN_OR_RETURN(auto v, deductions->OptNumber(letter));
        c.deductions[letter] = *v;
      }
    }
    PLUMB_RETURN_IF_ERROR(score->Finish());
    if (from) {
      const Json& prop = c.schema.value("properties", Json::object()).value(*from, Json());
      if (!prop.is_object() || prop.value("type", "") != "array") {
        return score->Error(
            "from", fmt::format("must name an array property of the schema, not '{}'", *from));
      }
    }
  }
  PLUMB_ASSIGN_OR_RETURN(auto panel, r.OptString("panel"));
  if (!panel || *panel == "mean")
    c.panel = Panel::kMean;
  else if (*panel == "median")
    c.panel = Panel::kMedian;
  else if (*panel == "majority")
    c.panel = Panel::kMajority;
  else
    return r.Error("panel", "must be mean, median or majority");
  PLUMB_ASSIGN_OR_RETURN(auto reasks, r.OptInt("max_reasks"));
  if (reasks && (*reasks < 0 || *reasks > 5))
    return r.Error("max_reasks", "must be between 0 and 5");
  c.max_reasks = static_cast<int>(reasks.value_or(1));
  PLUMB_ASSIGN_OR_RETURN(auto generation, r.OptObject("generation"));
  if (generation) {
    PLUMB_ASSIGN_OR_RETURN(c.params, ReadGenerationParams(*generation));
  }
  // structured_output: auto (the API's structured-output mode where it is known to exist), on
  // (always send it), off (only read the first JSON object of the reply).
  PLUMB_ASSIGN_OR_RETURN(auto structured, r.OptString("structured_output"));
  if (structured && *structured != "auto" && *structured != "on" && *structured != "off") {
    return r.Error("structured_output", "must be auto, on or off");
  }
  if (structured && c.output != JudgeGrader::Output::kJson) {
    return r.Error("structured_output", "applies to output: json only");
  }
  if (c.output == JudgeGrader::Output::kJson && structured.value_or("auto") != "off") {
    c.params.json_schema = c.schema;
    c.params.require_json_schema = structured.value_or("auto") == "on";
  }
  if (c.logprobs) c.params.top_logprobs = 20;
  PLUMB_RETURN_IF_ERROR(r.Finish());
  return std::unique_ptr<JudgeGrader>(std::make_unique<Judge>(std::move(c)));
}

Result<std::shared_ptr<const JudgeGrader>> JudgeLibrary::Get(const std::string& id) const {
  static std::mutex mu;
  std::lock_guard<std::mutex> lock(mu);
  auto it = loaded_.find(id);
  if (it != loaded_.end()) return it->second;
  for (const auto& dir : dirs_) {
    std::filesystem::path manifest = dir / id / "grader.yaml";
    std::error_code ec;
    if (!std::filesystem::exists(manifest, ec)) continue;
    PLUMB_ASSIGN_OR_RETURN(auto grader, LoadJudgeGrader(manifest));
    std::shared_ptr<const JudgeGrader> shared = std::move(grader);
    loaded_[id] = shared;
    return shared;
  }
  std::vector<std::string> ids = Ids();
  return NotFound(fmt::format("unknown judge grader '{}' (known: {})", id,
                              ids.empty() ? "none" : Join(ids, ", ")));
}

std::vector<std::string> JudgeLibrary::Ids() const {
  std::set<std::string> ids;
  for (const auto& dir : dirs_) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
      if (std::filesystem::exists(e.path() / "grader.yaml", ec))
        ids.insert(e.path().filename().string());
    }
  }
  return {ids.begin(), ids.end()};
}

LogprobScore ScoreFromLogprobs(const std::vector<std::pair<std::string, double>>& top) {
  LogprobScore s;
  double weighted = 0;
  for (const auto& [token, logprob] : top) {
    auto v = SmallInt(Trim(token));
    if (!v) continue;
    double p = std::exp(logprob);
    s.mass += p;
    weighted += p * *v;
  }
  if (s.mass > 0) s.score = weighted / s.mass;
  return s;
}

std::optional<std::string> ExtractJsonObject(const std::string& text) {
  for (size_t start = text.find('{'); start != std::string::npos;
       start = text.find('{', start + 1)) {
    int depth = 0;
    bool in_string = false, escaped = false;
    for (size_t i = start; i < text.size(); ++i) {
      char c = text[i];
      if (in_string) {
        if (escaped)
          escaped = false;
        else if (c == '\\')
          escaped = true;
        else if (c == '"')
          in_string = false;
        continue;
      }
      if (c == '"')
        in_string = true;
      else if (c == '{')
        ++depth;
      else if (c == '}' && --depth == 0) {
        std::string candidate = text.substr(start, i - start + 1);
        if (!Json::parse(candidate, nullptr, false).is_discarded()) return candidate;
        break;
      }
    }
  }
  return std::nullopt;
}

std::string CheckJsonSchema(const Json& value, const Json& schema, const std::string& path) {
  std::string where = path.empty() ? "(top)" : path;
  if (schema.contains("enum")) {
    bool found = false;
    for (const auto& e : schema["enum"]) found = found || e == value;
    if (!found)
      return fmt::format("{}: {} is not one of {}", where, DumpJson(value),
                         DumpJson(schema["enum"]));
  }
  std::string type = schema.value("type", "");
  bool ok = type.empty() || (type == "object" && value.is_object()) ||
            (type == "array" && value.is_array()) || (type == "string" && value.is_string()) ||
            (type == "number" && value.is_number()) ||
            (type == "integer" && value.is_number_integer()) ||
            (type == "boolean" && value.is_boolean());
  if (!ok) return fmt::format("{}: expected {}", where, type);
  if (value.is_object()) {
    for (const auto& req : schema.value("required", Json::array())) {
      if (!value.contains(req.get<std::string>()))
        return fmt::format("{}: '{}' is missing", where, req.get<std::string>());
    }
    const Json& props = schema.value("properties", Json::object());
    for (const auto& [k, v] : value.items()) {
      if (props.contains(k)) {
        std::string problem = CheckJsonSchema(v, props[k], path + "/" + k);
        if (!problem.empty()) return problem;
      } else if (schema.value("additionalProperties", true) == false) {
        return fmt::format("{}: unexpected '{}'", where, k);
      }
    }
  }
  if (value.is_array() && schema.contains("items")) {
    for (size_t i = 0; i < value.size(); ++i) {
      std::string problem =
          CheckJsonSchema(value[i], schema["items"], path + "/" + std::to_string(i));
      if (!problem.empty()) return problem;
    }
  }
  return "";
}

}  // namespace plumb
