// HttpBackend::Submit: a protocol's request goes through the shared scheduler and its response
// through the protocol's parser, once per attempt.
#include <memory>

#include "plumb/backend.h"

namespace plumb {

HttpBackend::HttpBackend(const BackendContext& ctx)
    : scheduler_(ctx.scheduler),
      lane_(ctx.lane),
      lane_concurrency_(ctx.lane_concurrency),
      rpm_(ctx.rpm),
      tpm_(ctx.tpm) {}

void HttpBackend::Submit(ModelCall call, Done done) {
  Result<HttpRequest> request = BuildRequest(call);
  if (!request) {
    done(request.error(), CallReport{0, 0, 0});
    return;
  }
  request->lane = lane_;
  request->max_concurrency = lane_concurrency_;
  request->rpm = rpm_;
  request->tpm = tpm_;
  // About four characters per token, plus the longest reply allowed.
  double chars = 0;
  for (const auto& m : call.messages) chars += static_cast<double>(m.content.size());
  request->estimated_tokens = chars / 4 + call.params.max_tokens.value_or(500);
  // Filled by the attempt that succeeds; read by the completion callback. Both run on the
  // scheduler's thread, one after the other.
  auto parsed = std::make_shared<std::optional<Completion>>();
  scheduler_->Submit(
      std::move(request).value(),
      [this, parsed](const HttpResponse& response) -> Status {
        Result<Completion> c = ParseResponse(response);
        if (!c) return c.error();
        *parsed = std::move(c).value();
        return Status();
      },
      [parsed, done = std::move(done)](const Status& status, const CallReport& report) {
        if (!status.ok()) {
          done(status, report);
          return;
        }
        Completion c = std::move(**parsed);
        c.attempts = report.attempts;
        c.latency_ms = report.latency_ms;
        done(std::move(c), report);
      });
}

}  // namespace plumb
