// The RE2 wrapper: compilation with readable errors, search and iteration.
#include "plumb/regex.h"

#include <fmt/format.h>
#include <re2/re2.h>

namespace plumb {
namespace {

// RE2 reports "invalid perl operator: (?<" for lookbehind, "(?=" / "(?!" for lookahead and
// "invalid escape sequence: \1" for backreferences; say why, since the pattern may come from a
// Python or JavaScript parser that has them.
std::string Hint(std::string_view pattern, const std::string& error) {
  for (const char* op : {"(?=", "(?!", "(?<=", "(?<!"}) {
    if (pattern.find(op) != std::string_view::npos)
      return " (lookaround such as (?=...) or (?!...) is not supported: patterns run in linear "
             "time with RE2; match the context with a group instead, see docs/suite-format.md)";
  }
  if (error.find("escape") != std::string::npos) {
    for (size_t i = 0; i + 1 < pattern.size(); ++i) {
      if (pattern[i] == '\\' && pattern[i + 1] >= '1' && pattern[i + 1] <= '9')
        return " (backreferences such as \\1 are not supported: patterns run in linear time "
               "with RE2, see docs/suite-format.md)";
      if (pattern[i] == '\\') ++i;
    }
  }
  return "";
}

}  // namespace

Result<Regex> Regex::Compile(std::string_view pattern, Options options) {
  RE2::Options o;
  o.set_log_errors(false);
  o.set_case_sensitive(!options.ignore_case);
  // Replies can be megabytes long; the default 8 MB DFA budget would make RE2 fall back to its
  // slower (still linear) matcher on long texts, so allow more.
  o.set_max_mem(int64_t{64} << 20);
  auto re = std::make_shared<const RE2>(re2::StringPiece(pattern.data(), pattern.size()), o);
  if (!re->ok()) {
    return InvalidArgument(fmt::format("is not a valid regular expression: {}{}", re->error(),
                                       Hint(pattern, re->error())));
  }
  return Regex(std::move(re), std::string(pattern));
}

int Regex::groups() const { return re_->NumberOfCapturingGroups(); }

bool Regex::Search(std::string_view text, RegexMatch* match, size_t from) const {
  if (from > text.size()) return false;
  const int n = re_->NumberOfCapturingGroups() + 1;
  std::vector<re2::StringPiece> sub(static_cast<size_t>(n));
  re2::StringPiece subject(text.data(), text.size());
  if (!re_->Match(subject, from, text.size(), RE2::UNANCHORED, sub.data(), n)) return false;
  if (match != nullptr) {
    match->whole = std::string_view(sub[0].data(), sub[0].size());
    match->begin = static_cast<size_t>(sub[0].data() - text.data());
    match->end = match->begin + sub[0].size();
    match->groups.clear();
    for (int i = 1; i < n; ++i) {
      const auto& g = sub[static_cast<size_t>(i)];
      match->groups.emplace_back(g.data(), g.size());
    }
  }
  return true;
}

bool Regex::Contains(std::string_view text) const {
  return RE2::PartialMatch(re2::StringPiece(text.data(), text.size()), *re_);
}

bool Regex::FullMatch(std::string_view text) const {
  return RE2::FullMatch(re2::StringPiece(text.data(), text.size()), *re_);
}

void Regex::ForEach(std::string_view text, const std::function<bool(const RegexMatch&)>& fn) const {
  RegexMatch m;
  size_t from = 0;
  while (from <= text.size() && Search(text, &m, from)) {
    if (!fn(m)) return;
    from = m.end > m.begin ? m.end : m.end + 1;
  }
}

std::string Regex::ReplaceAll(std::string_view text, std::string_view replacement) const {
  std::string out;
  size_t last = 0;
  ForEach(text, [&](const RegexMatch& m) {
    out.append(text.substr(last, m.begin - last));
    out.append(replacement);
    last = m.end;
    return true;
  });
  out.append(text.substr(std::min(last, text.size())));
  return out;
}

std::string RegexQuote(std::string_view s) {
  return RE2::QuoteMeta(re2::StringPiece(s.data(), s.size()));
}

}  // namespace plumb
