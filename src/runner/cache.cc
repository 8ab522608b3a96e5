// The response cache: a content-addressed decorator around any backend whose answers are worth
// keeping (HTTP APIs), backed by the results database. Every reply passes through it, so it is
// also where configured keys are removed from reply text before anything stores it.
#include "plumb/hash.h"
#include "plumb/log.h"
#include "plumb/runner.h"

namespace plumb {
namespace {

class CachedBackend final : public Backend {
 public:
  CachedBackend(Backend& inner, Store& store, CachePolicy policy)
      : inner_(inner), store_(store), policy_(policy), identity_(inner.CacheIdentity()) {}

  std::string Id() const override { return inner_.Id(); }
  std::string CacheIdentity() const override { return identity_; }
  void Cancel() override { inner_.Cancel(); }

  void Submit(ModelCall call, Done done) override {
    bool deterministic = call.params.temperature && *call.params.temperature == 0;
    bool use = !identity_.empty() && (policy_ == CachePolicy::kAlways ||
                                      (policy_ == CachePolicy::kAuto && deterministic));
    if (!use) {
      inner_.Submit(std::move(call),
                    [done = std::move(done)](Result<Completion> r, const CallReport& report) {
                      if (r) r->text = Redact(r->text);
                      done(std::move(r), report);
                    });
      return;
    }
    std::string key = CacheKey(identity_, call);
    Result<std::optional<Completion>> hit = store_.CacheGet(key);
    if (!hit) LogWarning("response cache: {} (answering without it)", hit.error().message());
    if (hit && hit->has_value()) {
      Completion c = std::move(**hit);
      c.text = Redact(c.text);  // a cache written before keys were redacted
      c.attempts = 0;
      c.latency_ms = 0;
      done(std::move(c), CallReport{0, 0, 0});
      return;
    }
    inner_.Submit(std::move(call), [this, key, done = std::move(done)](Result<Completion> r,
                                                                       const CallReport& report) {
      if (r) {
        r->text = Redact(r->text);
        store_.CachePut(key, identity_, *r);
      }
      done(std::move(r), report);
    });
  }

 private:
  Backend& inner_;
  Store& store_;
  CachePolicy policy_;
  std::string identity_;
};

}  // namespace

std::string CacheKey(const std::string& identity, const ModelCall& call) {
  // Hashed field by field (each prefixed by its length) rather than through a JSON document:
  // the key is computed for every call and must stay cheap.
  Sha256 h;
  auto add = [&h](std::string_view field) {
    std::string len = std::to_string(field.size()) + ":";
    h.Update(len);
    h.Update(field);
  };
  add(identity);
  add(DumpJson(call.params.ToJson()));
  for (const auto& m : call.messages) {
    add(m.role);
    add(m.content);
    // Tool use (absent from plain conversations, so their keys are unchanged).
    for (const auto& tc : m.tool_calls) {
      add("call");
      add(tc.id);
      add(tc.name);
      add(tc.arguments);
    }
    if (!m.tool_call_id.empty()) add("result:" + m.tool_call_id);
  }
  add(std::to_string(call.hints.epoch));
  if (!call.tools.empty()) {
    add("tools:" + call.tool_choice);
    for (const auto& t : call.tools) {
      add(t.name);
      add(t.description);
      add(DumpJson(t.parameters));
    }
  }
  return h.HexDigest();
}

std::unique_ptr<Backend> WithCache(Backend& inner, Store& store, CachePolicy policy) {
  return std::make_unique<CachedBackend>(inner, store, policy);
}

}  // namespace plumb
