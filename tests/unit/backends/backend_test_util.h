// Shared by the API backends' unit tests: a fake environment, a scheduler that must never be
// used (the tests call the pure request/response functions), and a registry to build backends.
#ifndef PLUMB_TESTS_UNIT_BACKENDS_BACKEND_TEST_UTIL_H_
#define PLUMB_TESTS_UNIT_BACKENDS_BACKEND_TEST_UTIL_H_

#include <gtest/gtest.h>

#include <functional>
#include <map>
#include <memory>
#include <string>

#include "plumb/backend.h"

namespace plumb::testing {

class FakeEnv {
 public:
  explicit FakeEnv(std::map<std::string, std::string> vars) : vars_(std::move(vars)) {}
  std::function<const char*(const char*)> Fn() const {
    return [this](const char* name) -> const char* {
      auto it = vars_.find(name);
      return it == vars_.end() ? nullptr : it->second.c_str();
    };
  }

 private:
  std::map<std::string, std::string> vars_;
};

// A scheduler that must never be used: these tests call the pure functions directly.
class NoScheduler : public HttpScheduler {
 public:
  void Submit(HttpRequest, Interpret, Done) override { ADD_FAILURE() << "no I/O expected"; }
  void Cancel() override {}
  SchedulerStats Stats() const override { return {}; }
};

struct Fixture {
  NoScheduler scheduler;
  BackendRegistry registry{"backend kind"};
  Fixture() { RegisterBuiltinBackends(registry); }
  Result<std::unique_ptr<Backend>> Make(const std::string& spec, const FakeEnv& env,
                                        const std::string& base_url = "",
                                        const std::string& key_env = "",
                                        std::map<std::string, std::string> options = {}) {
    BackendContext ctx;
    ctx.spec = spec;
    ctx.base_url = base_url;
    ctx.api_key_env = key_env;
    ctx.options = std::move(options);
    ctx.scheduler = &scheduler;
    ctx.getenv = env.Fn();
    return CreateBackend(registry, ctx);
  }
};

inline HttpBackend& AsHttp(std::unique_ptr<Backend>& b) { return dynamic_cast<HttpBackend&>(*b); }

inline std::string Header(const HttpRequest& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "<absent>";
}

}  // namespace plumb::testing

#endif  // PLUMB_TESTS_UNIT_BACKENDS_BACKEND_TEST_UTIL_H_
