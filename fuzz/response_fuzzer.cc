// The providers' reply parsers (OpenAI-compatible, Anthropic, Gemini) on any status and body:
// an answer, or an error whose code decides retrying; never a crash.
#include "fuzz.h"
#include "plumb/backend.h"

namespace {

// The parsers are pure: nothing is ever sent.
class NoScheduler final : public plumb::HttpScheduler {
 public:
  void Submit(plumb::HttpRequest, Interpret, Done) override {}
  void Cancel() override {}
  plumb::SchedulerStats Stats() const override { return {}; }
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static NoScheduler scheduler;
  static plumb::BackendRegistry registry("backend kind");
  static std::vector<std::unique_ptr<plumb::Backend>> backends = [] {
    plumb::RegisterBuiltinBackends(registry);
    std::vector<std::unique_ptr<plumb::Backend>> out;
    for (const char* spec : {"openai/m", "anthropic/m", "google/m"}) {
      plumb::BackendContext ctx;
      ctx.spec = spec;
      ctx.base_url = "http://127.0.0.1:9/v1";
      ctx.scheduler = &scheduler;
      ctx.getenv = [](const char*) -> const char* { return nullptr; };
      if (auto b = plumb::CreateBackend(registry, ctx)) out.push_back(std::move(*b));
    }
    return out;
  }();
  if (size < 1) return 0;
  std::string_view in = plumb::fuzz::Input(data, size);
  plumb::HttpResponse response;
  static const int kStatuses[] = {200, 200, 200, 200, 400, 401, 403, 404, 429, 500, 503, 529};
  response.status = kStatuses[static_cast<uint8_t>(in[0]) % 12];
  response.body = std::string(in.substr(1));
  response.headers["retry-after"] = "1";
  for (const auto& b : backends) {
    auto* http = dynamic_cast<plumb::HttpBackend*>(b.get());
    if (http == nullptr) continue;
    auto c = http->ParseResponse(response);
    if (c && response.status != 200) __builtin_trap();  // an error status is never an answer
  }
  return 0;
}
