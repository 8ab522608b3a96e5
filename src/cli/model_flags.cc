// Flags and helpers shared by the commands that call models and judges (run, rescore,
// judge-check), and the report printed after a run.
#include <fmt/format.h>

#include <tuple>

#include "cli/commands.h"
#include "plumb/batch.h"
#include "plumb/log.h"
#include "plumb/report.h"

namespace plumb::cli {

Status ModelFlags::SetPrices(const Context& ctx, const std::string& model,
                             RunOptions& options) const {
  options.model_price = ctx.config.PriceOf(ctx.ResolveSpec(model));
  for (const auto& j : judges) {
    std::string spec = ctx.ResolveSpec(j);
    if (auto p = ctx.config.PriceOf(spec))
      options.judge_prices[spec] = *p;
    else if (max_cost)
      return InvalidArgument(fmt::format(
          "--max-cost: no price is known for judge '{}' (add it under 'prices:' in plumb.yaml)",
          spec));
  }
  if (max_cost && !options.model_price) {
    return InvalidArgument(
        fmt::format("--max-cost: no price is known for '{}' (add it under 'prices:' in plumb.yaml)",
                    ctx.ResolveSpec(model)));
  }
  options.max_cost = max_cost;
  if (const ModelAlias* alias = ctx.Alias(model)) {
    options.model_defaults = alias->params;
    options.settings["alias"] = alias->name;
  }
  return Status();
}

void ModelFlags::Add(CLI::App& app, bool model_flags) {
  auto keep = [this](CLI::Option* o) {
    options_[o->get_name()] = o;
    return o;
  };
  keep(app.add_option("--judge", judges,
                      "Judge model spec for LLM-judged suites (repeat for a panel)"));
  keep(app.add_option("--judge-base-url", judge_base_url, "API base URL of the judge models"));
  keep(app.add_option("--judge-api-key-env", judge_api_key_env,
                      "Environment variable holding the judges' API key"));
  keep(app.add_option("--judge-concurrency", judge_concurrency,
                      "Judge requests in flight per endpoint (default: --concurrency)"))
      ->check(CLI::Range(1, 4096));
  if (model_flags) {
    keep(app.add_option("--base-url", base_urls,
                        "API base URL (openai: default $OPENAI_BASE_URL or "
                        "https://api.openai.com/v1); repeat it for a pool of endpoints serving the "
                        "same model"));
    keep(app.add_option("--api-key-env", api_key_env, "Environment variable holding the API key"));
    keep(app.add_option(
        "--backend-option", backend_options,
        "KEY=VALUE setting of the backend, e.g. text=response for replay (repeatable)"));
    keep(app.add_option("--rpm", rpm, "Requests per minute to the model's endpoint"))
        ->check(CLI::PositiveNumber);
    keep(app.add_option("--tpm", tpm,
                        "Tokens per minute to the model's endpoint (estimated before sending)"))
        ->check(CLI::PositiveNumber);
  }
  keep(app.add_option("--max-wait", max_wait_s,
                      "Seconds a request may wait in all (rate limits, retries) before it is an "
                      "error; with --batch, how long a batch may take (default 25 h)"))
      ->check(CLI::Range(1.0, 7 * 86400.0));
  keep(app.add_flag("--batch", batch,
                    "Send the calls through the provider's batch API (half price; openai, "
                    "anthropic, google): the model's and the judges'"));
  keep(app.add_option("--batch-poll", batch_poll_s,
                      "Seconds between batch status polls at first (then 1.5x longer each time, "
                      "up to 5 minutes)"))
      ->check(CLI::Range(0.01, 3600.0));
  keep(app.add_option("--batch-max-requests", batch_max_requests,
                      "Requests per batch at most (default: the provider's limit)"))
      ->check(CLI::Range(int64_t{1}, int64_t{1'000'000}));
  keep(app.add_option("--batch-max-bytes", batch_max_bytes,
                      "Bytes per batch at most (default: the provider's limit)"))
      ->check(CLI::Range(int64_t{1'000}, int64_t{2'000'000'000}));
  keep(app.add_option("--batch-file-only", batch_file_only,
                      "Write the batch files (OpenAI batch format for openai) into DIR instead "
                      "of submitting them"));
  keep(app.add_option("--concurrency", concurrency, "Max requests in flight per endpoint"))
      ->check(CLI::Range(1, 4096));
  keep(app.add_option("--cache", cache,
                      "Response cache: auto (temperature-0 requests), always, never"))
      ->check(CLI::IsMember({"auto", "always", "never"}));
  keep(app.add_option("--max-cost", max_cost,
                      "Stop cleanly (resumable) once this session's calls cost this many USD"))
      ->check(CLI::PositiveNumber);
  keep(app.add_option("--timeout", timeout_s, "Request timeout in seconds"))
      ->check(CLI::Range(0.1, 3600.0));
  keep(app.add_option("--max-retries", max_retries, "Retries per request on 429/5xx/timeouts"))
      ->check(CLI::Range(0, 100));
  keep(app.add_option("--retry-base-ms", retry_base_ms,
                      "First backoff delay in ms (doubles each retry, full jitter)"))
      ->check(CLI::Range(1, 600000));
}

Status ModelFlags::ApplyBatch(const Context& ctx, const std::string& model, const Backend& backend,
                              const std::vector<JudgeModel>& judge_models,
                              RunOptions& options) const {
  BatchOptions& b = options.batch;
  const ModelAlias* alias = ctx.Alias(model);
  b.enabled =
      batch || (alias && alias->batch) || !batch_file_only.empty() || !batch_results.empty();
  if (b.enabled && AsBatchApi(backend) == nullptr) {
    return InvalidArgument(
        fmt::format("--batch: model '{}' has no batch API (openai, anthropic and google have one)",
                    ctx.ResolveSpec(model)));
  }
  b.poll = std::chrono::milliseconds(static_cast<int64_t>(batch_poll_s * 1000));
  b.max_poll = std::max(b.poll, std::chrono::milliseconds(300'000));
  b.max_wait = Given("--max-wait")
                   ? std::chrono::milliseconds(static_cast<int64_t>(max_wait_s * 1000))
                   : std::chrono::milliseconds(std::chrono::hours(25));
  b.limits.max_requests = batch_max_requests;
  b.limits.max_bytes = batch_max_bytes;
  b.file_only = batch_file_only;
  b.results_file = batch_results;
  b.cancel = cancel_batches;
  for (size_t i = 0; i < judge_models.size() && i < judges.size(); ++i) {
    const ModelAlias* a = ctx.Alias(judges[i]);
    if ((batch || (a && a->batch)) && AsBatchApi(*judge_models[i].backend) != nullptr)
      options.batch_judges.insert(judge_models[i].spec);
  }
  return Status();
}

bool ModelFlags::Given(const std::string& flag) const {
  auto it = options_.find(flag);
  return it != options_.end() && it->second->count() > 0;
}

CachePolicy ModelFlags::Cache() const {
  if (cache == "always") return CachePolicy::kAlways;
  if (cache == "never") return CachePolicy::kNever;
  return CachePolicy::kAuto;
}

std::unique_ptr<HttpScheduler> ModelFlags::MakeScheduler() const {
  SchedulerOptions so;
  so.max_concurrency_per_endpoint = concurrency;
  so.retry.max_retries = max_retries;
  so.retry.base_delay = std::chrono::milliseconds(retry_base_ms);
  so.jitter_seed = seed;
  so.max_wait = std::chrono::milliseconds(static_cast<int64_t>(max_wait_s * 1000));
  return MakeCurlScheduler(so);
}

Result<std::unique_ptr<Backend>> ModelFlags::MakeBackend(const Context& ctx,
                                                         HttpScheduler* scheduler,
                                                         const std::string& spec,
                                                         bool judge) const {
  const ModelAlias* alias = ctx.Alias(spec);
  BackendContext b;
  b.spec = alias ? alias->spec : spec;
  b.timeout = std::chrono::milliseconds(static_cast<int64_t>(timeout_s * 1000));
  b.scheduler = scheduler;
  if (judge) {
    b.base_url = judge_base_url;
    b.api_key_env = judge_api_key_env;
    b.lane = "judge";
    b.lane_concurrency =
        judge_concurrency.value_or(alias && alias->concurrency ? *alias->concurrency : concurrency);
  } else {
    if (!base_urls.empty()) {
      b.base_url = base_urls[0];
      b.pool.assign(base_urls.begin() + 1, base_urls.end());
    }
    b.api_key_env = api_key_env;
    if (alias && alias->concurrency) b.lane_concurrency = *alias->concurrency;
    for (const auto& kv : backend_options) {
      size_t eq = kv.find('=');
      if (eq == std::string::npos || eq == 0) {
        return InvalidArgument(fmt::format("--backend-option '{}' must look like KEY=VALUE", kv));
      }
      b.options[kv.substr(0, eq)] = kv.substr(eq + 1);
    }
  }
  // A named model brings its own server, key variable and rate limits unless the flags say
  // otherwise.
  if (alias && b.base_url.empty()) {
    b.base_url = alias->base_url;
    b.pool = alias->endpoints;
    if (b.base_url.empty() && !b.pool.empty()) {
      b.base_url = b.pool.front();
      b.pool.erase(b.pool.begin());
    }
  }
  if (alias && b.api_key_env.empty()) b.api_key_env = alias->api_key_env;
  if (alias) b.rpm = alias->rpm.value_or(0), b.tpm = alias->tpm.value_or(0);
  if (!judge && rpm) b.rpm = *rpm;
  if (!judge && tpm) b.tpm = *tpm;
  auto backend = CreateBackend(ctx.backends, b);
  if (!backend && judge) return backend.error().WithPrefix("--judge");
  return backend;
}

Result<std::vector<JudgeModel>> ModelFlags::MakeJudges(
    const Context& ctx, HttpScheduler* scheduler,
    std::vector<std::unique_ptr<Backend>>& owned) const {
  std::vector<JudgeModel> out;
  for (const auto& spec : judges) {
    PLUMB_ASSIGN_OR_RETURN(auto backend, MakeBackend(ctx, scheduler, spec, /*judge=*/true));
    out.push_back(JudgeModel{ctx.ResolveSpec(spec), backend.get()});
    owned.push_back(std::move(backend));
  }
  return out;
}

void ModelFlags::InheritFrom(const RunRecord& run) {
  const Json& settings = run.settings;
  auto text = [&](const char* key, std::string& into) {
    if (into.empty() && settings.contains(key) && settings[key].is_string())
      into = settings[key].get<std::string>();
  };
  auto number = [&](const char* flag, const char* key, auto& into) {
    if (!Given(flag) && settings.contains(key) && settings[key].is_number())
      into = settings[key].get<std::decay_t<decltype(into)>>();
  };
  if (base_urls.empty() && settings.contains("base_urls") && settings["base_urls"].is_array()) {
    for (const auto& u : settings["base_urls"])
      if (u.is_string()) base_urls.push_back(u.get<std::string>());
  }
  if (base_urls.empty() && settings.contains("base_url") && settings["base_url"].is_string())
    base_urls.push_back(settings["base_url"].get<std::string>());
  text("api_key_env", api_key_env);
  text("judge_base_url", judge_base_url);
  text("judge_api_key_env", judge_api_key_env);
  if (!Given("--cache")) text("cache", cache);
  if (!rpm && settings.contains("rpm")) rpm = settings["rpm"].get<double>();
  if (!tpm && settings.contains("tpm")) tpm = settings["tpm"].get<double>();
  if (!judge_concurrency && settings.contains("judge_concurrency"))
    judge_concurrency = settings["judge_concurrency"].get<int>();
  number("--timeout", "timeout_s", timeout_s);
  number("--max-retries", "max_retries", max_retries);
  number("--retry-base-ms", "retry_base_ms", retry_base_ms);
  number("--max-wait", "max_wait_s", max_wait_s);
  if (!Given("--batch") && settings.value("batch", false)) batch = true;
  number("--batch-poll", "batch_poll_s", batch_poll_s);
  number("--batch-max-requests", "batch_max_requests", batch_max_requests);
  number("--batch-max-bytes", "batch_max_bytes", batch_max_bytes);
  if (!Given("--concurrency") && run.concurrency > 0) concurrency = run.concurrency;
  if (backend_options.empty() && settings.contains("backend_options")) {
    for (const auto& o : settings["backend_options"])
      backend_options.push_back(o.get<std::string>());
  }
  if (judges.empty() && settings.contains("judges")) {
    for (const auto& j : settings["judges"]) judges.push_back(j.get<std::string>());
  }
}

Json ModelFlags::Settings() const {
  Json s = {{"timeout_s", timeout_s},
            {"max_retries", max_retries},
            {"retry_base_ms", retry_base_ms},
            {"max_wait_s", max_wait_s},
            {"cache", cache}};
  if (batch) {
    s["batch"] = true;
    s["batch_poll_s"] = batch_poll_s;
    if (batch_max_requests > 0) s["batch_max_requests"] = batch_max_requests;
    if (batch_max_bytes > 0) s["batch_max_bytes"] = batch_max_bytes;
  }
  if (!base_urls.empty()) s["base_url"] = base_urls[0];
  if (base_urls.size() > 1) s["base_urls"] = base_urls;
  if (!api_key_env.empty()) s["api_key_env"] = api_key_env;
  if (!judge_base_url.empty()) s["judge_base_url"] = judge_base_url;
  if (!judge_api_key_env.empty()) s["judge_api_key_env"] = judge_api_key_env;
  if (judge_concurrency) s["judge_concurrency"] = *judge_concurrency;
  if (!backend_options.empty()) s["backend_options"] = backend_options;
  if (rpm) s["rpm"] = *rpm;
  if (tpm) s["tpm"] = *tpm;
  return s;
}

BaselineView BaselinesOf(const Context& ctx, Store& store, const Suite& suite, const RunRecord& run,
                         bool write_cache) {
  if (suite.kind->NeedsJudges())
    return {{}, "none for judged suites (their answers would need the judge too)"};
  auto b = Baselines(suite, run, ctx.backends, store, write_cache);
  if (!b) return {{}, b.error().message()};
  return {std::move(*b), ""};
}

int ReportRun(const Context& ctx, Store& store, const Suite& suite, const RunSummary& summary,
              double max_judge_error_rate, std::optional<BaselineView> baselines) {
  Result<RunRecord> run = store.GetRun(summary.run_id);
  if (!run) return ReportError(run.error());
  if (summary.finished_elsewhere && summary.status == "running") {
    // A worker whose run goes on in its other workers (or whose finisher is computing).
    std::fprintf(stderr,
                 "plumb: run %lld: this process ended %lld samples; the run goes on in its other "
                 "workers, and the one that ends the last sample computes its metrics (plumb show "
                 "%lld)\n",
                 static_cast<long long>(summary.run_id),
                 static_cast<long long>(summary.ended_here),
                 static_cast<long long>(summary.run_id));
    return Interrupted().load() ? kExitInterrupted : kExitOk;
  }
  if (summary.status != "completed") {
    baselines = BaselineView();
  } else if (!baselines) {
    baselines = BaselinesOf(ctx, store, suite, *run, true);
  }
  Result<std::string> text =
      FormatRun(*run, summary.metrics, "text", baselines->first, baselines->second);
  std::fputs(text->c_str(), stdout);
  std::fflush(stdout);
  long long id = summary.run_id;
  if (summary.budget_reached) {
    std::fprintf(
        stderr,
        "plumb: run %lld stopped at the cost budget ($%.4f spent): %lld of %lld samples finished "
        "and kept; continue with plumb resume %lld --max-cost USD\n",
        id, summary.spent_usd, static_cast<long long>(summary.done),
        static_cast<long long>(summary.samples), id);
    return kExitRunFailed;
  }
  if (summary.status == "failed") {
    std::fprintf(stderr, "plumb: error: run %lld failed: %s\n", id,
                 Redact(summary.failure.message()).c_str());
    return kExitRunFailed;
  }
  if (summary.status == "interrupted") {
    std::fprintf(stderr, "plumb: run %lld interrupted: %lld of %lld samples finished and kept\n",
                 id, static_cast<long long>(summary.done), static_cast<long long>(summary.samples));
    return kExitInterrupted;
  }
  int code = kExitOk;
  if (summary.errors > 0) {
    std::fprintf(stderr,
                 "plumb: run %lld finished with %lld errored samples (see plumb show %lld)\n", id,
                 static_cast<long long>(summary.errors), id);
    code = kExitItemErrors;
  }
  if (summary.judge_errors_exceeded) {
    std::fprintf(
        stderr,
        "plumb: run %lld: judge error rate %.1f%% is above %.1f%% (see --max-judge-error-rate)\n",
        id, summary.judge_error_rate, max_judge_error_rate);
    code = kExitItemErrors;
  }
  return code;
}

}  // namespace plumb::cli
