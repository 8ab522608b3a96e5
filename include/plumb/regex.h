// Regular expressions from data (answer patterns, regex graders) and from code: one wrapper
// around RE2, so every pattern runs in time linear in its input, with no recursion, whatever the
// reply. The syntax is RE2's, which is Python's `re` without lookaround and backreferences,
// including the inline flags (?i) (?m) (?s) and named groups (?P<name>...).
#ifndef PLUMB_REGEX_H_
#define PLUMB_REGEX_H_

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "plumb/result.h"

namespace re2 {
class RE2;
}

namespace plumb {

// One match: the whole match and each capture group, as views into the searched text (an
// unmatched optional group is empty with data() == nullptr).
struct RegexMatch {
  std::string_view whole;
  std::vector<std::string_view> groups;  // groups[0] is capture group 1
  // Byte offsets in the searched text.
  size_t begin = 0;
  size_t end = 0;
};

// A compiled pattern. Cheap to copy (shares the compiled program); thread-safe to match.
class Regex {
 public:
  struct Options {
    bool ignore_case = false;  // as if the pattern began with (?i)
  };

  // Compiles `pattern`. kInvalidArgument with RE2's reason, and a hint when the pattern uses
  // what RE2 leaves out on purpose (lookaround, backreferences), for the caller to prefix with
  // file:line:field.
  static Result<Regex> Compile(std::string_view pattern, Options options);
  static Result<Regex> Compile(std::string_view pattern) { return Compile(pattern, Options{}); }

  const std::string& pattern() const { return pattern_; }
  int groups() const;  // number of capture groups

  // The leftmost match at or after byte `from` (earlier text still counts as context for ^, \b).
  bool Search(std::string_view text, RegexMatch* match, size_t from = 0) const;
  // Whether the pattern matches somewhere in `text`.
  bool Contains(std::string_view text) const;
  // Whether the pattern matches all of `text`.
  bool FullMatch(std::string_view text) const;
  // Calls `fn` for each non-overlapping match from left to right, as Python's re.finditer does
  // (after an empty match the search moves on by one byte); stops when `fn` returns false.
  void ForEach(std::string_view text, const std::function<bool(const RegexMatch&)>& fn) const;
  // `text` with every match replaced by `replacement` (taken literally).
  std::string ReplaceAll(std::string_view text, std::string_view replacement) const;

 private:
  explicit Regex(std::shared_ptr<const re2::RE2> re, std::string pattern)
      : re_(std::move(re)), pattern_(std::move(pattern)) {}
  std::shared_ptr<const re2::RE2> re_;
  std::string pattern_;
};

// `s` with every character that has a meaning in a pattern escaped, so it matches literally.
std::string RegexQuote(std::string_view s);

}  // namespace plumb

#endif  // PLUMB_REGEX_H_
