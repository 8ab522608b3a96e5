// Registry<T, Context>: explicit name -> factory tables for backends, graders and suite kinds.
#ifndef PLUMB_REGISTRY_H_
#define PLUMB_REGISTRY_H_

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "plumb/result.h"

namespace plumb {

// Levenshtein distance, for "did you mean" suggestions.
size_t EditDistance(std::string_view a, std::string_view b);

// Maps a kind name ("openai", "choice") to a factory. Built-ins are added explicitly by the
// Register*() function in src/<dir>/register.cc; there are no self-registering statics.
// Not thread-safe for registration; Create() is safe once registration is done.
template <typename T, typename Context>
class Registry {
 public:
  using Factory = std::function<Result<std::unique_ptr<T>>(const Context&)>;
  struct Entry {
    std::string name;
    std::string description;
    Factory factory;
  };

  // `what` names the registry in messages, e.g. "backend".
  explicit Registry(std::string what) : what_(std::move(what)) {}

  void Register(std::string name, std::string description, Factory factory) {
    std::string key = name;
    entries_[key] = Entry{std::move(name), std::move(description), std::move(factory)};
  }

  // kNotFound with a "did you mean" hint when `name` is unknown.
  Result<std::unique_ptr<T>> Create(const std::string& name, const Context& ctx) const {
    auto it = entries_.find(name);
    if (it == entries_.end()) return Status(StatusCode::kNotFound, UnknownMessage(name));
    return it->second.factory(ctx);
  }

  bool Contains(const std::string& name) const { return entries_.count(name) > 0; }

  // Entries sorted by name.
  std::vector<const Entry*> Entries() const {
    std::vector<const Entry*> out;
    for (const auto& [_, e] : entries_) out.push_back(&e);
    return out;
  }

  std::string UnknownMessage(const std::string& name) const {
    std::string best;
    size_t best_d = 3;  // suggest only close names
    std::string all;
    for (const auto& [key, _] : entries_) {
      size_t d = EditDistance(name, key);
      if (d < best_d) best_d = d, best = key;
      all += all.empty() ? key : ", " + key;
    }
    std::string msg = "unknown " + what_ + " '" + name + "'";
    if (!best.empty()) msg += " (did you mean '" + best + "'?)";
    return msg + "; known: " + all;
  }

 private:
  std::string what_;
  std::map<std::string, Entry> entries_;
};

}  // namespace plumb

#endif  // PLUMB_REGISTRY_H_
