// Prompt templates and string helpers.
#include "plumb/text.h"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <fstream>
#include <optional>
#include <sstream>

namespace plumb {
namespace {

// Walks `tmpl`, calling on_text for literal runs and on_name for placeholders.
template <typename OnText, typename OnName>
Status Scan(std::string_view tmpl, OnText on_text, OnName on_name) {
  size_t i = 0;
  while (i < tmpl.size()) {
    char c = tmpl[i];
    if (c == '{' && i + 1 < tmpl.size() && tmpl[i + 1] == '{') {
      on_text("{");
      i += 2;
    } else if (c == '}' && i + 1 < tmpl.size() && tmpl[i + 1] == '}') {
      on_text("}");
      i += 2;
    } else if (c == '{') {
      size_t end = tmpl.find('}', i);
      if (end == std::string_view::npos) {
        return InvalidArgument(fmt::format("unclosed '{{' at offset {}", i));
      }
      std::string_view name = tmpl.substr(i + 1, end - i - 1);
      if (name.empty() || name.find_first_of("{ \n") != std::string_view::npos) {
        return InvalidArgument(
            fmt::format("bad placeholder '{{{}}}' (write '{{{{' for a literal brace)", name));
      }
      PLUMB_RETURN_IF_ERROR(on_name(std::string(name)));
      i = end + 1;
    } else if (c == '}') {
      return InvalidArgument(
          fmt::format("unmatched '}}' at offset {} (write '}}}}' for a literal brace)", i));
    } else {
      size_t next = tmpl.find_first_of("{}", i);
      if (next == std::string_view::npos) next = tmpl.size();
      on_text(tmpl.substr(i, next - i));
      i = next;
    }
  }
  return Status();
}

}  // namespace

Result<std::vector<std::string>> TemplatePlaceholders(std::string_view tmpl) {
  std::vector<std::string> names;
  PLUMB_RETURN_IF_ERROR(Scan(
      tmpl, [](std::string_view) {},
      [&](std::string name) {
        if (std::find(names.begin(), names.end(), name) == names.end()) names.push_back(name);
        return Status();
      }));
  return names;
}

Status CheckTemplate(std::string_view tmpl, const std::vector<std::string>& allowed,
                     const std::string& what) {
  auto names = TemplatePlaceholders(tmpl);
  if (!names) return InvalidArgument(fmt::format("{}: {}", what, names.error().message()));
  for (const auto& n : *names) {
    if (std::find(allowed.begin(), allowed.end(), n) == allowed.end()) {
      std::vector<std::string> shown;
      for (const auto& a : allowed) shown.push_back("{" + a + "}");
      return InvalidArgument(
          fmt::format("{}: unknown placeholder '{{{}}}' (known: {})", what, n, Join(shown, ", ")));
    }
  }
  return Status();
}

Result<std::string> RenderTemplate(std::string_view tmpl,
                                   const std::map<std::string, std::string>& vars) {
  std::string out;
  out.reserve(tmpl.size() * 2);
  PLUMB_RETURN_IF_ERROR(Scan(
      tmpl, [&](std::string_view text) { out.append(text); },
      [&](std::string name) {
        auto it = vars.find(name);
        if (it == vars.end())
          return InvalidArgument(fmt::format("no value for placeholder '{{{}}}'", name));
        out += it->second;
        return Status();
      }));
  return out;
}

Result<Template> Template::Parse(std::string_view tmpl) {
  Template t;
  PLUMB_RETURN_IF_ERROR(Scan(
      tmpl,
      [&](std::string_view text) {
        if (!t.parts_.empty() && !t.parts_.back().placeholder) {
          t.parts_.back().text.append(text);
        } else {
          t.parts_.push_back(Part{false, std::string(text)});
        }
        t.literal_bytes_ += text.size();
      },
      [&](std::string name) {
        t.parts_.push_back(Part{true, std::move(name)});
        return Status();
      }));
  return t;
}

Status Template::MissingValue(const std::string& name) {
  return InvalidArgument(fmt::format("no value for placeholder '{{{}}}'", name));
}

Result<std::string> Template::Render(const std::map<std::string, std::string>& vars) const {
  return Render([&](const std::string& name) -> const std::string* {
    auto it = vars.find(name);
    return it == vars.end() ? nullptr : &it->second;
  });
}

std::string ToLower(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

std::string ToUpper(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

std::string Trim(std::string_view s) {
  size_t b = s.find_first_not_of(" \t\r\n");
  if (b == std::string_view::npos) return "";
  size_t e = s.find_last_not_of(" \t\r\n");
  return std::string(s.substr(b, e - b + 1));
}

std::string NormalizeQuotes(std::string_view s) {
  // One pass (replacing in place would move the rest of a long reply at every quote). The four
  // quotes are U+2018, U+2019 (E2 80 98/99) and U+201C, U+201D (E2 80 9C/9D).
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\xE2' && i + 2 < s.size() && s[i + 1] == '\x80') {
      char c = s[i + 2];
      if (c == '\x98' || c == '\x99') {
        out += '\'';
        i += 2;
        continue;
      }
      if (c == '\x9C' || c == '\x9D') {
        out += '"';
        i += 2;
        continue;
      }
    }
    out += s[i];
  }
  return out;
}

std::string TextFolding::Apply(std::string_view s) const {
  std::string out = quotes ? NormalizeQuotes(s) : std::string(s);
  return lowercase ? ToLower(out) : out;
}

std::vector<std::string> TextFolding::Names() const {
  std::vector<std::string> out;
  if (quotes) out.emplace_back("quotes");
  if (lowercase) out.emplace_back("lowercase");
  return out;
}

Result<TextFolding> TextFolding::FromNames(const std::vector<std::string>& names,
                                           const std::string& what) {
  TextFolding f;
  for (const auto& n : names) {
    if (n == "quotes") {
      f.quotes = true;
    } else if (n == "lowercase") {
      f.lowercase = true;
    } else {
      return InvalidArgument(
          fmt::format("{}: '{}' is not a known folding (known: quotes, lowercase)", what, n));
    }
  }
  return f;
}

std::string Join(const std::vector<std::string>& parts, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < parts.size(); ++i) {
    if (i) out += sep;
    out += parts[i];
  }
  return out;
}

std::string MarkdownCell(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (c == '|') out += '\\';
    out += c;
  }
  return out;
}

// UTF-8 is checked by hand: the check is a few lines of the standard's table 3-7, and none of
// the libraries plumb builds on exposes one (nlohmann only validates while parsing JSON).
namespace {

// The length of the well-formed sequence starting at s[i], or 0.
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n = 0;
  unsigned char lo = 0x80, hi = 0xBF;
  if (c >= 0xC2 && c <= 0xDF) {
    n = 2;
  } else if (c >= 0xE0 && c <= 0xEF) {
    n = 3;
    if (c == 0xE0) lo = 0xA0;  // no overlong forms
    if (c == 0xED) hi = 0x9F;  // no surrogates
  } else if (c >= 0xF0 && c <= 0xF4) {
    n = 4;
    if (c == 0xF0) lo = 0x90;
    if (c == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return 0;
  }
  if (i + n > s.size()) return 0;
  if (b(i + 1) < lo || b(i + 1) > hi) return 0;
  for (size_t k = 2; k < n; ++k) {
    if (b(i + k) < 0x80 || b(i + k) > 0xBF) return 0;
  }
  return n;
}

}  // namespace

size_t InvalidUtf8Offset(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    // Runs of ASCII are the common case.
    while (i < s.size() && static_cast<unsigned char>(s[i]) < 0x80) ++i;
    if (i == s.size()) break;
    size_t n = Utf8SequenceLength(s, i);
    if (n == 0) return i;
    i += n;
  }
  return std::string_view::npos;
}

namespace {

struct Position {
  size_t line = 0, column = 0;
  unsigned char byte = 0;
};

std::optional<Position> InvalidUtf8Position(std::string_view text) {
  size_t at = InvalidUtf8Offset(text);
  if (at == std::string_view::npos) return std::nullopt;
  Position p;
  p.line = 1 + static_cast<size_t>(std::count(text.begin(), text.begin() + at, '\n'));
  size_t start = at == 0 ? std::string_view::npos : text.rfind('\n', at - 1);
  p.column = start == std::string_view::npos ? at + 1 : at - start;
  p.byte = static_cast<unsigned char>(text[at]);
  return p;
}

}  // namespace

std::string DescribeInvalidUtf8(std::string_view text) {
  auto p = InvalidUtf8Position(text);
  if (!p) return "";
  if (p->line == 1) return fmt::format("byte 0x{:02X} at column {}", p->byte, p->column);
  return fmt::format("byte 0x{:02X} at line {}, column {}", p->byte, p->line, p->column);
}

std::string ToValidUtf8(std::string_view s) {
  if (InvalidUtf8Offset(s) == std::string_view::npos) return std::string(s);
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    size_t n = Utf8SequenceLength(s, i);
    if (n == 0) {
      out += "\xEF\xBF\xBD";  // U+FFFD
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

std::string QuoteInput(std::string_view s, size_t max_bytes) {
  std::string out;
  size_t i = 0;
  while (i < s.size() && out.size() < max_bytes) {
    size_t n = Utf8SequenceLength(s, i);
    if (n == 0) {
      out += fmt::format("\\x{:02X}", static_cast<unsigned char>(s[i]));
      ++i;
    } else {
      if (out.size() + n > max_bytes) break;
      out.append(s.substr(i, n));
      i += n;
    }
  }
  if (i < s.size()) out += fmt::format("... ({} bytes)", s.size());
  return out;
}

Result<std::string> ReadTextFile(const std::filesystem::path& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec))
    return NotFound(fmt::format("{}: is a folder, not a file", path.string()));
  std::ifstream in(path, std::ios::binary);
  if (!in) return NotFound(fmt::format("{}: cannot open file", path.string()));
  std::stringstream ss;
  ss << in.rdbuf();
  if (in.bad()) return NotFound(fmt::format("{}: cannot read file", path.string()));
  std::string text = ss.str();
  if (auto p = InvalidUtf8Position(text)) {
    return InvalidArgument(
        fmt::format("{}:{}: invalid UTF-8 at column {} (byte 0x{:02X}); save "
                    "the file as UTF-8",
                    path.string(), p->line, p->column, p->byte));
  }
  return text;
}

std::string NowIso8601() {
  std::time_t t = std::time(nullptr);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

}  // namespace plumb
