// plumb run: evaluate one or more models on a suite.
#include <fmt/format.h>

#include "cli/commands.h"
#include "plumb/log.h"
#include "plumb/report.h"
#include "plumb/runner.h"
#include "plumb/store.h"

namespace plumb::cli {
namespace {

struct RunFlags {
  std::string suite;
  std::vector<std::string> models;
  std::optional<int64_t> limit;
  std::optional<int> epochs;
  uint64_t seed = 1;
  int concurrency = kDefaultConcurrency;
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int> max_tokens;
  std::optional<int64_t> model_seed;
  std::string base_url;
  std::string api_key_env;
  std::vector<std::string> backend_options;
  double timeout_s = static_cast<double>(kDefaultRequestTimeout.count()) / 1000;
  int max_retries = kDefaultMaxRetries;
  int retry_base_ms = static_cast<int>(kDefaultRetryBase.count());
  std::string progress = "auto";
};

ProgressMode ParseProgress(const std::string& s) {
  if (s == "bar") return ProgressMode::kBar;
  if (s == "lines") return ProgressMode::kLines;
  if (s == "none") return ProgressMode::kNone;
  return ProgressMode::kAuto;
}

int RunOne(const Context& ctx, const RunFlags& f, const Suite& suite, const std::string& model) {
  SchedulerOptions so;
  so.max_concurrency_per_endpoint = f.concurrency;
  so.retry.max_retries = f.max_retries;
  so.retry.base_delay = std::chrono::milliseconds(f.retry_base_ms);
  so.jitter_seed = f.seed;
  std::unique_ptr<HttpScheduler> scheduler = MakeCurlScheduler(so);

  BackendContext bctx;
  bctx.spec = model;
  bctx.base_url = f.base_url;
  bctx.api_key_env = f.api_key_env;
  bctx.timeout = std::chrono::milliseconds(static_cast<int64_t>(f.timeout_s * 1000));
  bctx.scheduler = scheduler.get();
  for (const auto& kv : f.backend_options) {
    size_t eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) {
      return ReportError(InvalidArgument(fmt::format("--backend-option '{}' must look like KEY=VALUE", kv)));
    }
    bctx.options[kv.substr(0, eq)] = kv.substr(eq + 1);
  }
  Result<std::unique_ptr<Backend>> backend = CreateBackend(ctx.backends, bctx);
  if (!backend) return ReportError(backend.error());

  Result<std::unique_ptr<Store>> store = OpenSqliteStore(ctx.db_path);
  if (!store) return ReportError(store.error());

  RunOptions options;
  options.model_spec = model;
  options.epochs = f.epochs.value_or(suite.manifest.samples);
  options.limit = f.limit;
  options.seed = f.seed;
  options.concurrency = f.concurrency;
  options.params.temperature = f.temperature;
  options.params.top_p = f.top_p;
  options.params.max_tokens = f.max_tokens;
  options.params.seed = f.model_seed;
  options.progress = ParseProgress(f.progress);
  options.settings = {{"timeout_s", f.timeout_s},
                      {"max_retries", f.max_retries},
                      {"retry_base_ms", f.retry_base_ms}};
  if (!f.base_url.empty()) options.settings["base_url"] = f.base_url;
  if (!f.api_key_env.empty()) options.settings["api_key_env"] = f.api_key_env;

  Result<RunSummary> summary =
      RunSuite(suite, **backend, scheduler.get(), **store, options, Interrupted());
  if (!summary) return ReportError(summary.error());
  Result<RunRecord> run = (*store)->GetRun(summary->run_id);
  if (!run) return ReportError(run.error());
  Result<std::string> text = FormatRun(*run, summary->metrics, "text");
  std::fputs(text->c_str(), stdout);
  std::fflush(stdout);
  if (summary->status == "failed") {
    std::fprintf(stderr, "plumb: error: run %lld failed: %s\n",
                 static_cast<long long>(summary->run_id),
                 Redact(summary->failure.message()).c_str());
    return kExitRunFailed;
  }
  if (summary->status == "interrupted") {
    std::fprintf(stderr, "plumb: run %lld interrupted: %lld of %lld samples finished and kept\n",
                 static_cast<long long>(summary->run_id), static_cast<long long>(summary->done),
                 static_cast<long long>(summary->samples));
    return kExitInterrupted;
  }
  if (summary->errors > 0) {
    std::fprintf(stderr, "plumb: run %lld finished with %lld errored samples (see plumb show %lld)\n",
                 static_cast<long long>(summary->run_id), static_cast<long long>(summary->errors),
                 static_cast<long long>(summary->run_id));
    return kExitItemErrors;
  }
  return kExitOk;
}

}  // namespace

Action SetupRun(CLI::App& app, Context& ctx) {
  auto f = std::make_shared<RunFlags>();
  app.add_option("--suite", f->suite, "Suite id, or a suite folder / suite.yaml path")->required();
  app.add_option("--model", f->models, "Model spec KIND/MODEL, e.g. openai/gpt-4o-mini or builtin/random (repeatable)")
      ->required();
  app.add_option("--limit", f->limit, "Only the first N items")->check(CLI::PositiveNumber);
  app.add_option("--epochs", f->epochs, "Samples per item (default: the suite's 'samples', else 1)")
      ->check(CLI::Range(1, 1000));
  app.add_option("--seed", f->seed, "Seed for option order, baselines and bootstrap");
  app.add_option("--concurrency", f->concurrency, "Max requests in flight per endpoint")
      ->check(CLI::Range(1, 4096));
  app.add_option("--temperature", f->temperature, "Sampling temperature (overrides the suite)")
      ->check(CLI::Range(0.0, 2.0));
  app.add_option("--top-p", f->top_p, "Nucleus sampling (overrides the suite)")->check(CLI::Range(0.0, 1.0));
  app.add_option("--max-tokens", f->max_tokens, "Max tokens per reply (overrides the suite)")
      ->check(CLI::PositiveNumber);
  app.add_option("--model-seed", f->model_seed, "Sampling seed sent to the model (overrides the suite)");
  app.add_option("--base-url", f->base_url, "API base URL (openai: default $OPENAI_BASE_URL or https://api.openai.com/v1)");
  app.add_option("--api-key-env", f->api_key_env, "Environment variable holding the API key");
  app.add_option("--backend-option", f->backend_options, "KEY=VALUE setting of the backend, e.g. text=response for replay (repeatable)");
  app.add_option("--timeout", f->timeout_s, "Request timeout in seconds")->check(CLI::Range(0.1, 3600.0));
  app.add_option("--max-retries", f->max_retries, "Retries per request on 429/5xx/timeouts")
      ->check(CLI::Range(0, 100));
  app.add_option("--retry-base-ms", f->retry_base_ms, "First backoff delay in ms (doubles each retry, full jitter)")
      ->check(CLI::Range(1, 600000));
  app.add_option("--progress", f->progress, "Progress display")
      ->check(CLI::IsMember({"auto", "bar", "lines", "none"}));
  return [f, &ctx]() {
    Result<Suite> suite = ctx.LoadSuiteByName(f->suite);
    if (!suite) return ReportError(suite.error());
    int worst = kExitOk;
    for (const auto& model : f->models) {
      if (Interrupted().load()) return kExitInterrupted;
      int code = RunOne(ctx, *f, *suite, model);
      if (code == kExitUsage || code == kExitInterrupted) return code;
      if (code != kExitOk && (worst == kExitOk || code == kExitRunFailed)) worst = code;
    }
    return worst;
  };
}

}  // namespace plumb::cli
