// Strict reading of JSON and YAML documents: duplicate keys, unknown keys and wrong types are
// errors that name the file, the line and the field. Never "warn and use a default".
#ifndef PLUMB_JSON_H_
#define PLUMB_JSON_H_

#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "plumb/result.h"
#include "plumb/types.h"

namespace plumb {

// Where the values of one document came from: a file and the line of each JSON pointer.
class SourceMap {
 public:
  SourceMap() = default;
  // Every pointer maps to `line` (a JSONL line).
  SourceMap(std::string file, int line) : file_(std::move(file)), default_line_(line) {}

  void SetLine(const std::string& pointer, int line) { lines_[pointer] = line; }
  const std::string& file() const { return file_; }
  // "file:line" for the value at `pointer` (falls back to the nearest mapped parent).
  std::string Where(const std::string& pointer) const;
  // The line of `pointer` (or of its nearest mapped parent); 0 when unknown.
  int Line(const std::string& pointer) const;
  // The map of the value at `pointer`, its pointers relative to it (a list element of a file).
  SourceMap Sub(const std::string& pointer) const;

 private:
  std::string file_;
  int default_line_ = 0;
  std::map<std::string, int> lines_;
};

// A parsed document and its source map.
struct Document {
  Json value;
  SourceMap source;
};

// Parses one JSON text strictly (duplicate keys are errors). `where` prefixes messages,
// e.g. "items.jsonl:3".
Result<Json> ParseJsonStrict(std::string_view text, const std::string& where);

// Loads a YAML file into JSON with line numbers. Plain scalars become null, bool, integer or
// float when they read as such (YAML 1.2 core schema); quoted and block scalars stay strings.
// Anchors and aliases are resolved. Duplicate keys are errors.
Result<Document> LoadYamlFile(const std::filesystem::path& path);
Result<Document> ParseYaml(const std::string& text, const std::string& file);

// Reads the fields of one JSON object and remembers which were read, so Finish() can reject
// unknown keys. Messages look like "<file>:<line>: field 'generation.temperature' must be a
// number". The reader keeps references: the document must outlive it.
class FieldReader {
 public:
  // `path` is the dotted name of this object inside the document ("" at the top).
  FieldReader(const Json& object, const SourceMap& source, std::string pointer = "",
              std::string path = "");

  bool Has(const std::string& key) const;
  const Json* Get(const std::string& key);  // marks the key read; nullptr when absent
  bool WasRead(const std::string& key) const { return read_.count(key) > 0; }

  Result<std::string> String(const std::string& key);
  Result<std::optional<std::string>> OptString(const std::string& key);
  Result<std::optional<double>> OptNumber(const std::string& key);
  Result<std::optional<int64_t>> OptInt(const std::string& key);
  Result<std::optional<bool>> OptBool(const std::string& key);
  Result<std::optional<std::vector<std::string>>> OptStringList(const std::string& key);
  // A nested object; kInvalidArgument when present but not an object.
  Result<std::optional<FieldReader>> OptObject(const std::string& key);

  // Rejects keys nobody read.
  Status Finish() const;

  // "<file>:<line>: field '<path.key>' <what>" as a kInvalidArgument Status.
  Status Error(const std::string& key, const std::string& what) const;
  std::string FieldName(const std::string& key) const;
  std::string Where(const std::string& key) const;
  const SourceMap& source() const { return *source_; }
  const Json& object() const { return *object_; }

 private:
  const Json* object_;
  const SourceMap* source_;
  std::string pointer_;
  std::string path_;
  std::set<std::string> read_;
};

// Reads a "params" style object into GenerationParams (temperature, top_p, max_tokens, seed,
// stop), strictly.
Result<GenerationParams> ReadGenerationParams(FieldReader& reader);

// Fields of JSON from outside (provider replies, batch results): obj[key] when obj is an
// object holding that type there, otherwise `fallback`. nlohmann's value() throws when the key
// holds another type; a reply may hold any type anywhere.
std::string StringField(const Json& obj, const char* key, std::string fallback = "");
int64_t IntField(const Json& obj, const char* key, int64_t fallback = 0);
bool BoolField(const Json& obj, const char* key, bool fallback = false);

// Escapes a key for use in a JSON pointer ("~" -> "~0", "/" -> "~1").
std::string JsonPointerEscape(const std::string& key);

}  // namespace plumb

#endif  // PLUMB_JSON_H_
