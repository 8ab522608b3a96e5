// Strict JSON and YAML reading with file:line locations.
#include "plumb/json.h"

#include <fmt/format.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <fstream>
#include <sstream>

#include "plumb/text.h"

namespace plumb {
namespace {

// nlohmann's messages start with "[json.exception.parse_error.101] parse error at line 1,
// column 5: "; keep what follows and report the position ourselves.
// The text it quotes ("last read: '...'") is input: shortened, invalid bytes escaped.
std::string CleanJsonError(const std::string& what) {
  std::string out = what;
  size_t colon = what.find("column ");
  if (colon != std::string::npos) {
    size_t after = what.find(": ", colon);
    if (after != std::string::npos) out = what.substr(after + 2);
  }
  return QuoteInput(out, 300);
}

// Nesting beyond this is refused: no real suite, item or reply needs it, and code that walks
// documents recursively (serialising, schema checks) must not run out of stack.
constexpr int kMaxDepth = 64;
// YAML aliases can make a small file expand exponentially ("billion laughs"); no suite needs
// more values than this.
constexpr size_t kMaxYamlValues = 1'000'000;

// "answer_patterns[0].regex" for the pointer "/answer_patterns/0/regex".
std::string FieldOfPointer(const std::string& pointer) {
  std::string out;
  size_t i = 1;
  while (i <= pointer.size() && !pointer.empty()) {
    size_t next = pointer.find('/', i);
    std::string part = pointer.substr(i, next == std::string::npos ? std::string::npos : next - i);
    bool index = !part.empty() && std::all_of(part.begin(), part.end(), ::isdigit);
    if (index)
      out += "[" + part + "]";
    else
      out += (out.empty() ? "" : ".") + part;
    if (next == std::string::npos) break;
    i = next + 1;
  }
  return out;
}

struct YamlBudget {
  size_t values = 0;
};

// The scalar (a value, or with `key` a key of the mapping at `pointer`) as UTF-8, or an error
// naming its field.
Status CheckScalar(const std::string& text, const std::string& pointer, int line,
                   const SourceMap& map, bool key = false) {
  std::string where = DescribeInvalidUtf8(text);
  if (where.empty()) return Status();
  std::string field = FieldOfPointer(pointer);
  std::string what =
      key ? (field.empty() ? std::string("a key") : fmt::format("a key of field '{}'", field))
          : (field.empty() ? std::string("a value") : fmt::format("field '{}'", field));
  return InvalidArgument(
      fmt::format("{}:{}: {} is not valid UTF-8 ({} of the {}); save the file "
                  "as UTF-8",
                  map.file(), line, what, where, key ? "key" : "value"));
}

bool IsPlainNull(const std::string& s) {
  return s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL";
}

std::optional<bool> PlainBool(const std::string& s) {
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  return std::nullopt;
}

// YAML 1.2 core-schema numbers, parsed by hand: std::regex would cost milliseconds of
// start-up to compile, and from_chars/strtod do the conversion exactly.
Json PlainScalar(const std::string& s) {
  if (IsPlainNull(s)) return nullptr;
  if (auto b = PlainBool(s)) return *b;
  const char* begin = s.data();
  const char* end = s.data() + s.size();
  const char* digits = begin + (s[0] == '+' || s[0] == '-' ? 1 : 0);
  if (digits < end && std::all_of(digits, end, [](char c) { return c >= '0' && c <= '9'; })) {
    int64_t v = 0;
    auto [ptr, ec] = std::from_chars(s[0] == '+' ? begin + 1 : begin, end, v);
    if (ec == std::errc() && ptr == end) return v;
    return s;  // out of range: keep the text
  }
  bool numeric =
      digits < end && (std::isdigit(static_cast<unsigned char>(*digits)) || *digits == '.');
  for (const char* p = digits; numeric && p < end; ++p) {
    numeric = std::isdigit(static_cast<unsigned char>(*p)) || *p == '.' || *p == 'e' || *p == 'E' ||
              *p == '+' || *p == '-';
  }
  if (numeric) {
    char* parsed = nullptr;
    double v = std::strtod(s.c_str(), &parsed);
    if (parsed == s.c_str() + s.size()) return v;
  }
  if (s == ".inf" || s == "+.inf") return HUGE_VAL;
  if (s == "-.inf") return -HUGE_VAL;
  return s;
}

Result<Json> ConvertYaml(const YAML::Node& node, const std::string& pointer, SourceMap& map,
                         YamlBudget& budget, int depth) {
  const int line = node.Mark().line + 1;
  map.SetLine(pointer, line);
  if (++budget.values > kMaxYamlValues) {
    return InvalidArgument(fmt::format(
        "{}:{}: the document expands to more than {} values (aliases repeating aliases?)",
        map.file(), line, kMaxYamlValues));
  }
  if (depth > kMaxDepth) {
    return InvalidArgument(fmt::format("{}:{}: values are nested more than {} levels deep",
                                       map.file(), line, kMaxDepth));
  }
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return Json(nullptr);
    case YAML::NodeType::Scalar: {
      PLUMB_RETURN_IF_ERROR(CheckScalar(node.Scalar(), pointer, line, map));
      const std::string& tag = node.Tag();
      if (tag == "!" || tag == "tag:yaml.org,2002:str") return Json(node.Scalar());
      return PlainScalar(node.Scalar());
    }
    case YAML::NodeType::Sequence: {
      Json arr = Json::array();
      size_t i = 0;
      for (const auto& child : node) {
        PLUMB_ASSIGN_OR_RETURN(Json v, ConvertYaml(child, pointer + "/" + std::to_string(i++), map,
                                                   budget, depth + 1));
        arr.push_back(std::move(v));
      }
      return arr;
    }
    case YAML::NodeType::Map: {
      Json obj = Json::object();
      for (const auto& kv : node) {
        if (!kv.first.IsScalar()) {
          return InvalidArgument(fmt::format("{}:{}: keys must be plain strings", map.file(),
                                             kv.first.Mark().line + 1));
        }
        const std::string key = kv.first.Scalar();
        PLUMB_RETURN_IF_ERROR(CheckScalar(key, pointer, kv.first.Mark().line + 1, map, true));
        if (key == "<<") {
          return InvalidArgument(fmt::format("{}:{}: merge keys ('<<') are not supported",
                                             map.file(), kv.first.Mark().line + 1));
        }
        if (obj.contains(key)) {
          return InvalidArgument(fmt::format("{}:{}: duplicate key '{}'", map.file(),
                                             kv.first.Mark().line + 1, QuoteInput(key)));
        }
        std::string child = pointer + "/" + JsonPointerEscape(key);
        PLUMB_ASSIGN_OR_RETURN(Json v, ConvertYaml(kv.second, child, map, budget, depth + 1));
        map.SetLine(child, kv.first.Mark().line + 1);  // the key's line reads best
        obj[key] = std::move(v);
      }
      return obj;
    }
  }
  return Json(nullptr);
}

std::string TypeName(const Json& v) {
  if (v.is_null()) return "null";
  if (v.is_boolean()) return "a boolean";
  if (v.is_number()) return "a number";
  if (v.is_string()) return "a string";
  if (v.is_array()) return "a list";
  return "an object";
}

}  // namespace

std::string JsonPointerEscape(const std::string& key) {
  std::string out;
  for (char c : key) {
    if (c == '~')
      out += "~0";
    else if (c == '/')
      out += "~1";
    else
      out += c;
  }
  return out;
}

int SourceMap::Line(const std::string& pointer) const {
  std::string p = pointer;
  while (true) {
    auto it = lines_.find(p);
    if (it != lines_.end()) return it->second;
    if (p.empty()) return default_line_;
    p = p.substr(0, p.rfind('/'));
  }
}

SourceMap SourceMap::Sub(const std::string& pointer) const {
  SourceMap out(file_, Line(pointer));
  for (auto it = lines_.lower_bound(pointer); it != lines_.end(); ++it) {
    if (it->first.compare(0, pointer.size(), pointer) != 0) break;
    std::string rest = it->first.substr(pointer.size());
    if (!rest.empty() && rest[0] != '/') continue;  // "/10" is not under "/1"
    out.lines_[rest] = it->second;
  }
  return out;
}

std::string SourceMap::Where(const std::string& pointer) const {
  int line = Line(pointer);
  return line > 0 ? fmt::format("{}:{}", file_, line) : file_;
}

Result<Json> ParseJsonStrict(std::string_view text, const std::string& where) {
  std::vector<std::set<std::string>> keys;
  std::string duplicate;
  struct TooDeep {};
  auto callback = [&](int depth, Json::parse_event_t event, Json& parsed) {
    if (depth > kMaxDepth) throw TooDeep{};
    if (event == Json::parse_event_t::object_start) {
      keys.emplace_back();
    } else if (event == Json::parse_event_t::object_end) {
      if (!keys.empty()) keys.pop_back();
    } else if (event == Json::parse_event_t::key && !keys.empty()) {
      const std::string& k = parsed.get_ref<const std::string&>();
      if (!keys.back().insert(k).second && duplicate.empty()) duplicate = k;
    }
    return true;
  };
  try {
    Json value = Json::parse(text.begin(), text.end(), callback);
    if (!duplicate.empty()) {
      return InvalidArgument(fmt::format("{}: duplicate key '{}'", where, QuoteInput(duplicate)));
    }
    return value;
  } catch (const Json::exception& e) {
    // parse_error, and out_of_range for a number beyond a double ("1e999"): found by fuzzing.
    return InvalidArgument(fmt::format("{}: invalid JSON: {}", where, CleanJsonError(e.what())));
  } catch (const TooDeep&) {
    return InvalidArgument(fmt::format(
        "{}: invalid JSON: values are nested more than {} levels deep", where, kMaxDepth));
  }
}

Result<Document> ParseYaml(const std::string& text, const std::string& file) {
  Document doc;
  doc.source = SourceMap(file, 0);
  try {
    YAML::Node root = YAML::Load(text);
    YamlBudget budget;
    PLUMB_ASSIGN_OR_RETURN(doc.value, ConvertYaml(root, "", doc.source, budget, 0));
  } catch (const YAML::Exception& e) {
    return InvalidArgument(fmt::format("{}:{}: invalid YAML: {}", file, e.mark.line + 1, e.msg));
  }
  return doc;
}

Result<Document> LoadYamlFile(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    return NotFound(fmt::format("{}: is a folder, not a file", path.string()));
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(fmt::format("{}: cannot open file", path.string()));
  std::stringstream ss;
  ss << in.rdbuf();
  // Scalars are checked for UTF-8 one by one, so the message can name the field.
  return ParseYaml(ss.str(), path.string());
}

FieldReader::FieldReader(const Json& object, const SourceMap& source, std::string pointer,
                         std::string path)
    : object_(&object), source_(&source), pointer_(std::move(pointer)), path_(std::move(path)) {}

bool FieldReader::Has(const std::string& key) const {
  return object_->is_object() && object_->contains(key);
}

const Json* FieldReader::Get(const std::string& key) {
  read_.insert(key);
  if (!Has(key)) return nullptr;
  return &(*object_)[key];
}

std::string FieldReader::FieldName(const std::string& key) const {
  return path_.empty() ? key : path_ + "." + key;
}

std::string FieldReader::Where(const std::string& key) const {
  return source_->Where(pointer_ + "/" + JsonPointerEscape(key));
}

Status FieldReader::Error(const std::string& key, const std::string& what) const {
  return InvalidArgument(fmt::format("{}: field '{}' {}", Where(key), FieldName(key), what));
}

Result<std::string> FieldReader::String(const std::string& key) {
  PLUMB_ASSIGN_OR_RETURN(auto v, OptString(key));
  if (!v) return Error(key, "is required");
  return *v;
}

Result<std::optional<std::string>> FieldReader::OptString(const std::string& key) {
  const Json* v = Get(key);
  if (v == nullptr) return std::optional<std::string>();
  if (!v->is_string()) return Error(key, "must be a string, not " + TypeName(*v));
  return std::optional<std::string>(v->get<std::string>());
}

Result<std::optional<double>> FieldReader::OptNumber(const std::string& key) {
  const Json* v = Get(key);
  if (v == nullptr) return std::optional<double>();
  if (!v->is_number()) return Error(key, "must be a number, not " + TypeName(*v));
  return std::optional<double>(v->get<double>());
}

Result<std::optional<int64_t>> FieldReader::OptInt(const std::string& key) {
  const Json* v = Get(key);
  if (v == nullptr) return std::optional<int64_t>();
  if (!v->is_number_integer()) return Error(key, "must be an integer, not " + TypeName(*v));
  return std::optional<int64_t>(v->get<int64_t>());
}

Result<std::optional<bool>> FieldReader::OptBool(const std::string& key) {
  const Json* v = Get(key);
  if (v == nullptr) return std::optional<bool>();
  if (!v->is_boolean()) return Error(key, "must be true or false, not " + TypeName(*v));
  return std::optional<bool>(v->get<bool>());
}

Result<std::optional<std::vector<std::string>>> FieldReader::OptStringList(const std::string& key) {
  const Json* v = Get(key);
  if (v == nullptr) return std::optional<std::vector<std::string>>();
  if (!v->is_array()) return Error(key, "must be a list of strings, not " + TypeName(*v));
  std::vector<std::string> out;
  for (size_t i = 0; i < v->size(); ++i) {
    if (!(*v)[i].is_string()) {
      return InvalidArgument(fmt::format(
          "{}: field '{}[{}]' must be a string, not {}",
          source_->Where(pointer_ + "/" + JsonPointerEscape(key) + "/" + std::to_string(i)),
          FieldName(key), i, TypeName((*v)[i])));
    }
    out.push_back((*v)[i].get<std::string>());
  }
  return std::optional<std::vector<std::string>>(std::move(out));
}

Result<std::optional<FieldReader>> FieldReader::OptObject(const std::string& key) {
  const Json* v = Get(key);
  if (v == nullptr) return std::optional<FieldReader>();
  if (!v->is_object()) return Error(key, "must be a mapping, not " + TypeName(*v));
  return std::optional<FieldReader>(
      FieldReader(*v, *source_, pointer_ + "/" + JsonPointerEscape(key), FieldName(key)));
}

Status FieldReader::Finish() const {
  if (!object_->is_object()) return Status();
  for (const auto& [key, _] : object_->items()) {
    if (!read_.count(key)) return Error(key, "is not a known setting");
  }
  return Status();
}

Result<GenerationParams> ReadGenerationParams(FieldReader& r) {
  GenerationParams p;
  PLUMB_ASSIGN_OR_RETURN(p.temperature, r.OptNumber("temperature"));
  PLUMB_ASSIGN_OR_RETURN(p.top_p, r.OptNumber("top_p"));
  PLUMB_ASSIGN_OR_RETURN(auto max_tokens, r.OptInt("max_tokens"));
  if (max_tokens) {
    if (*max_tokens <= 0) return r.Error("max_tokens", "must be positive");
    p.max_tokens = static_cast<int>(*max_tokens);
  }
  PLUMB_ASSIGN_OR_RETURN(p.seed, r.OptInt("seed"));
  PLUMB_ASSIGN_OR_RETURN(auto stop, r.OptStringList("stop"));
  if (stop) p.stop = *stop;
  if (p.temperature && (*p.temperature < 0 || *p.temperature > 2)) {
    return r.Error("temperature", "must be between 0 and 2");
  }
  if (p.top_p && (*p.top_p <= 0 || *p.top_p > 1)) return r.Error("top_p", "must be in (0, 1]");
  PLUMB_RETURN_IF_ERROR(r.Finish());
  return p;
}

std::string StringField(const Json& obj, const char* key, std::string fallback) {
  if (!obj.is_object()) return fallback;
  auto it = obj.find(key);
  return it != obj.end() && it->is_string() ? it->get<std::string>() : fallback;
}

int64_t IntField(const Json& obj, const char* key, int64_t fallback) {
  if (!obj.is_object()) return fallback;
  auto it = obj.find(key);
  return it != obj.end() && it->is_number_integer() ? it->get<int64_t>() : fallback;
}

bool BoolField(const Json& obj, const char* key, bool fallback) {
  if (!obj.is_object()) return fallback;
  auto it = obj.find(key);
  return it != obj.end() && it->is_boolean() ? it->get<bool>() : fallback;
}

}  // namespace plumb
