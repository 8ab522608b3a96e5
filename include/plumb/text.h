// Small text helpers: prompt templates, case folding, trimming.
#ifndef PLUMB_TEXT_H_
#define PLUMB_TEXT_H_

#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include "plumb/result.h"

namespace plumb {

// Templates use {name} placeholders; "{{" and "}}" are literal braces. Substitution is one
// pass, so text inserted for a placeholder is never expanded again.
//
// The placeholder names used by `tmpl`; kInvalidArgument for an unbalanced brace.
Result<std::vector<std::string>> TemplatePlaceholders(std::string_view tmpl);
// Checks that every placeholder of `tmpl` is in `allowed`. `what` names the template in
// messages ("suite.yaml:12: field 'template'").
Status CheckTemplate(std::string_view tmpl, const std::vector<std::string>& allowed,
                     const std::string& what);
// Renders `tmpl`; a placeholder missing from `vars` is kInvalidArgument.
Result<std::string> RenderTemplate(std::string_view tmpl,
                                   const std::map<std::string, std::string>& vars);

// A template parsed once, for templates rendered for every sample (option lines, instructions).
class Template {
 public:
  Template() = default;
  // kInvalidArgument for an unbalanced brace, as RenderTemplate.
  static Result<Template> Parse(std::string_view tmpl);
  // Renders with `value(name)` for each placeholder (nullptr: kInvalidArgument, no value).
  template <typename Lookup>
  Result<std::string> Render(Lookup value) const {
    std::string out;
    out.reserve(literal_bytes_ + 64);
    for (const auto& part : parts_) {
      if (!part.placeholder) {
        out += part.text;
        continue;
      }
      const std::string* v = value(part.text);
      if (v == nullptr) return MissingValue(part.text);
      out += *v;
    }
    return out;
  }
  Result<std::string> Render(const std::map<std::string, std::string>& vars) const;

 private:
  static Status MissingValue(const std::string& name);
  struct Part {
    bool placeholder = false;
    std::string text;  // literal text, or the placeholder's name
  };
  std::vector<Part> parts_;
  size_t literal_bytes_ = 0;
};

std::string ToLower(std::string_view s);
std::string ToUpper(std::string_view s);
std::string Trim(std::string_view s);
// Replaces typographic quotes and apostrophes with ASCII ones.
std::string NormalizeQuotes(std::string_view s);

// What is folded before a reply is matched against answer patterns or refusal phrases: part of a
// suite's protocol (suite.yaml `answer_normalize`, `refusal.normalize`), so a published parser
// that matches the raw text can be reproduced exactly.
struct TextFolding {
  bool quotes = false;     // "quotes": typographic quotes and apostrophes to ASCII
  bool lowercase = false;  // "lowercase": ASCII letters to lower case

  std::string Apply(std::string_view s) const;
  // The names of the folds, in the order they are applied ([] when none).
  std::vector<std::string> Names() const;
  // From a list of names; `what` prefixes the error ("suite.yaml:4: field 'answer_normalize'").
  static Result<TextFolding> FromNames(const std::vector<std::string>& names,
                                       const std::string& what);
};
std::string Join(const std::vector<std::string>& parts, std::string_view sep);
// `s` as a Markdown table cell: '|' (which would end the cell) escaped.
std::string MarkdownCell(std::string_view s);

// UTF-8. Everything plumb reads (suites, items, graders, rubrics, plumb.yaml, policies, replay
// files) must be well-formed UTF-8: it is stored, hashed and exported as JSON.
//
// The byte offset of the first byte that is not part of well-formed UTF-8 (overlong forms,
// surrogates and code points above U+10FFFF included), or npos.
size_t InvalidUtf8Offset(std::string_view s);
// "byte 0xFF at line 3, column 7" ("byte 0xFF at column 7" on the first line) for the first
// invalid byte of `text`; "" when it is valid.
std::string DescribeInvalidUtf8(std::string_view text);
// `s` with every invalid byte replaced by U+FFFD: for text from outside (a server's error body)
// that must be stored or printed.
std::string ToValidUtf8(std::string_view s);
// `s` for quoting in a message: at most `max_bytes`, cut at a character boundary with "..." and
// the full size after it; invalid bytes written as \xNN.
std::string QuoteInput(std::string_view s, size_t max_bytes = 200);
// The contents of a text file: kNotFound when it cannot be read, kInvalidArgument
// "<file>:<line>: invalid UTF-8 at column <c> (byte 0x..)" when it is not UTF-8.
Result<std::string> ReadTextFile(const std::filesystem::path& path);

// Current UTC time as "2026-11-26T08:15:00Z".
std::string NowIso8601();

}  // namespace plumb

#endif  // PLUMB_TEXT_H_
