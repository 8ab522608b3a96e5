// The one list of built-in backend kinds.
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>

#include "backends/backends.h"

namespace plumb {

void RegisterBuiltinBackends(BackendRegistry& registry) {
  registry.Register("openai",
                    "OpenAI chat completions; also vLLM, llama.cpp server, Ollama, LM Studio "
                    "(--base-url)",
                    backends::MakeOpenAiChatBackend);
  registry.Register("anthropic", "Anthropic Messages API", backends::MakeAnthropicBackend);
  registry.Register("google", "Google Gemini API (gemini-*)", backends::MakeGeminiBackend);
  registry.Register(
      "exec", "a subprocess speaking JSON lines: exec/<command> (--backend-option processes=N)",
      backends::MakeExecBackend);
  registry.Register(
      "replay", "stored outputs: replay/<file.jsonl|file.csv>, keyed by item id (and epoch, turn)",
      backends::MakeReplayBackend);
  registry.Register("builtin",
                    "reference baselines without network: builtin/random, builtin/first, "
                    "builtin/last, builtin/refuse, builtin/longest, builtin/shortest",
                    backends::MakeBuiltinBackend);
}

Result<std::unique_ptr<Backend>> CreateBackend(const BackendRegistry& registry,
                                               BackendContext ctx) {
  size_t slash = ctx.spec.find('/');
  if (slash == std::string::npos || slash == 0) {
    return InvalidArgument(fmt::format(
        "model spec '{}' must look like KIND/MODEL, e.g. openai/gpt-4o-mini or builtin/random",
        ctx.spec));
  }
  ctx.kind = ctx.spec.substr(0, slash);
  ctx.model = ctx.spec.substr(slash + 1);
  if (!ctx.getenv) ctx.getenv = [](const char* name) { return std::getenv(name); };
  if (!registry.Contains(ctx.kind)) {
    return NotFound(
        fmt::format("model spec '{}': {}", ctx.spec, registry.UnknownMessage(ctx.kind)));
  }
  return registry.Create(ctx.kind, ctx);
}

Status CheckBackendOptions(const BackendContext& ctx, const std::vector<std::string>& known) {
  for (const auto& [key, _] : ctx.options) {
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      return InvalidArgument(fmt::format("backend '{}': unknown --backend-option '{}' (known: {})",
                                         ctx.kind, key, list.empty() ? "none" : list));
    }
  }
  return Status();
}

bool IsFatalForRun(StatusCode code) {
  return code == StatusCode::kUnauthenticated || code == StatusCode::kPermissionDenied ||
         code == StatusCode::kNotFound || code == StatusCode::kFailedPrecondition;
}

}  // namespace plumb
