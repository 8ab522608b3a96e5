// Factories of the built-in backend kinds; register.cc lists them in the registry.
#ifndef PLUMB_BACKENDS_BACKENDS_H_
#define PLUMB_BACKENDS_BACKENDS_H_

#include <memory>

#include "plumb/backend.h"

namespace plumb::backends {

Result<std::unique_ptr<Backend>> MakeOpenAiChatBackend(const BackendContext& ctx);
Result<std::unique_ptr<Backend>> MakeAnthropicBackend(const BackendContext& ctx);
Result<std::unique_ptr<Backend>> MakeGeminiBackend(const BackendContext& ctx);
Result<std::unique_ptr<Backend>> MakeBuiltinBackend(const BackendContext& ctx);
Result<std::unique_ptr<Backend>> MakeReplayBackend(const BackendContext& ctx);
Result<std::unique_ptr<Backend>> MakeExecBackend(const BackendContext& ctx);

}  // namespace plumb::backends

#endif  // PLUMB_BACKENDS_BACKENDS_H_
