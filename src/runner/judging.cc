// Judge calls with bounded re-asks.
#include "plumb/hash.h"
#include "plumb/log.h"
#include "plumb/runner.h"

namespace plumb {
namespace {

struct Judging {
  std::shared_ptr<const JudgeGrader> grader;
  JudgeModel judge;
  std::vector<Message> messages;
  CallHints hints;
  std::string prompt_hash;
  int reasks = 0;
  int attempts = 0;
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  bool cached = true;  // every call of the judgment came from the cache
  bool batched = false;  // some call went through a provider batch
  std::function<void(Grade, Status)> done;
};

void Step(std::shared_ptr<Judging> j) {
  ModelCall call{j->messages, j->grader->params(), j->hints};
  j->judge.backend->Submit(std::move(call), [j](Result<Completion> r, const CallReport& report) {
    j->attempts += report.attempts;
    Grade g;
    Status call_status;
    if (!r) {
      call_status = r.error();
      g.grader = j->grader->IdVersion();
      g.status = GradeStatus::kError;
      g.error = Redact(r.error().message());
      g.details["error_code"] = std::string(StatusCodeName(r.error().code()));
    } else {
      j->prompt_tokens += r->prompt_tokens.value_or(0);
      j->completion_tokens += r->completion_tokens.value_or(0);
      j->cached = j->cached && r->cached;
      j->batched = j->batched || r->batched;
      g = j->grader->Read(*r);
      if (g.status == GradeStatus::kError && j->reasks < j->grader->max_reasks()) {
        j->messages.push_back(Message{"assistant", r->text});
        j->messages.push_back(Message{"user", j->grader->ReaskMessage(g)});
        j->reasks++;
        Step(j);
        return;
      }
    }
    g.details["judge"] = j->judge.spec;
    g.details["prompt_hash"] = j->prompt_hash;
    g.details["params"] = j->grader->params().ToJson();
    g.details["reasks"] = j->reasks;
    g.details["attempts"] = j->attempts;
    g.details["prompt_tokens"] = j->prompt_tokens;
    g.details["completion_tokens"] = j->completion_tokens;
    if (call_status.ok() && j->cached) g.details["cached"] = true;
    if (j->batched) g.details["batched"] = true;
    j->done(std::move(g), call_status);
  });
}

}  // namespace

std::string PromptHash(const std::vector<Message>& prompt) {
  return Sha256Hex(DumpJson(MessagesToJson(prompt))).substr(0, 16);
}

void RequestJudgment(std::shared_ptr<const JudgeGrader> grader, const JudgeModel& judge,
                     std::vector<Message> prompt, CallHints hints,
                     std::function<void(Grade judgment, Status call)> done) {
  auto j = std::make_shared<Judging>();
  j->grader = std::move(grader);
  j->judge = judge;
  j->prompt_hash = PromptHash(prompt);
  j->messages = std::move(prompt);
  j->hints = std::move(hints);
  j->done = std::move(done);
  Step(j);
}

}  // namespace plumb
