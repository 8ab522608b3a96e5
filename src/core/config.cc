// plumb.yaml: named models (spec, server, key variable, parameters, concurrency, rate limits,
// price) and price overrides.
#include "plumb/config.h"

#include <fmt/format.h>

#include "plumb/json.h"

namespace plumb {
namespace {

Result<Price> ReadPrice(FieldReader& r) {
  Price p;
  PLUMB_ASSIGN_OR_RETURN(auto input, r.OptNumber("input"));
  PLUMB_ASSIGN_OR_RETURN(auto output, r.OptNumber("output"));
  PLUMB_ASSIGN_OR_RETURN(p.cached_input, r.OptNumber("cached_input"));
  PLUMB_ASSIGN_OR_RETURN(p.batch_input, r.OptNumber("batch_input"));
  PLUMB_ASSIGN_OR_RETURN(p.batch_output, r.OptNumber("batch_output"));
  if (!input || !output)
    return r.Error(input ? "output" : "input", "is required (USD per million tokens)");
  if (*input < 0 || *output < 0 || (p.cached_input && *p.cached_input < 0) ||
      (p.batch_input && *p.batch_input < 0) || (p.batch_output && *p.batch_output < 0)) {
    return r.Error("input", "prices must not be negative");
  }
  p.input = *input;
  p.output = *output;
  PLUMB_RETURN_IF_ERROR(r.Finish());
  return p;
}

std::string ModelName(const std::string& spec) {
  size_t slash = spec.find('/');
  return slash == std::string::npos ? spec : spec.substr(slash + 1);
}

std::optional<Price> LongestPrefix(const std::map<std::string, Price>& table,
                                   const std::string& name) {
  std::optional<Price> best;
  size_t best_len = 0;
  for (const auto& [prefix, price] : table) {
    if (name.rfind(prefix, 0) == 0 && prefix.size() >= best_len)
      best = price, best_len = prefix.size();
  }
  return best;
}

}  // namespace

double Price::Cost(int64_t prompt_tokens, int64_t completion_tokens) const {
  return (static_cast<double>(prompt_tokens) * input +
          static_cast<double>(completion_tokens) * output) /
         1e6;
}

double Price::BatchCost(int64_t prompt_tokens, int64_t completion_tokens) const {
  return (static_cast<double>(prompt_tokens) * batch_input.value_or(input * kBatchDiscount) +
          static_cast<double>(completion_tokens) * batch_output.value_or(output * kBatchDiscount)) /
         1e6;
}

double Price::UsageCost(const Json& usage) const {
  int64_t in = usage.value("prompt_tokens", int64_t{0});
  int64_t out = usage.value("completion_tokens", int64_t{0});
  int64_t bin = 0, bout = 0;
  if (usage.contains("batched")) {
    bin = usage["batched"].value("prompt_tokens", int64_t{0});
    bout = usage["batched"].value("completion_tokens", int64_t{0});
  }
  return Cost(in - bin, out - bout) + BatchCost(bin, bout);
}

const std::map<std::string, Price>& DefaultPrices() {
  // List prices per million tokens (input, output, cached input) as published in 2025. Check
  // them against the provider before relying on a cost estimate; override in plumb.yaml.
  static const std::map<std::string, Price> kPrices = {
      {"gpt-4o", {2.50, 10.00, 1.25}},
      {"gpt-4o-mini", {0.15, 0.60, 0.075}},
      {"gpt-4.1", {2.00, 8.00, 0.50}},
      {"gpt-4.1-mini", {0.40, 1.60, 0.10}},
      {"gpt-4.1-nano", {0.10, 0.40, 0.025}},
      {"o3-mini", {1.10, 4.40, 0.55}},
      {"claude-3-5-haiku", {0.80, 4.00, 0.08}},
      {"claude-3-5-sonnet", {3.00, 15.00, 0.30}},
      {"claude-3-7-sonnet", {3.00, 15.00, 0.30}},
      {"claude-sonnet-4", {3.00, 15.00, 0.30}},
      {"claude-opus-4", {15.00, 75.00, 1.50}},
      {"gemini-1.5-flash", {0.075, 0.30, std::nullopt}},
      {"gemini-1.5-pro", {1.25, 5.00, std::nullopt}},
      {"gemini-2.0-flash", {0.10, 0.40, 0.025}},
  };
  return kPrices;
}

std::optional<Price> Config::PriceOf(const std::string& spec) const {
  for (const auto& [name, alias] : models) {
    if (alias.spec == spec && alias.price) return alias.price;
  }
  std::string name = ModelName(spec);
  if (auto p = LongestPrefix(prices, name)) return p;
  if (spec.rfind("builtin/", 0) == 0 || spec.rfind("replay/", 0) == 0)
    return Price{0, 0, std::nullopt};
  return LongestPrefix(DefaultPrices(), name);
}

Result<Config> LoadConfig(const std::filesystem::path& path) {
  std::error_code ec;
  if (!std::filesystem::exists(path, ec))
    return NotFound(fmt::format("config file '{}' does not exist (see --config)", path.string()));
  PLUMB_ASSIGN_OR_RETURN(Document doc, LoadYamlFile(path));
  Config c;
  c.file = path;
  if (doc.value.is_null()) return c;
  if (!doc.value.is_object())
    return InvalidArgument(path.string() + ": the config must be a mapping");
  FieldReader top(doc.value, doc.source);
  PLUMB_ASSIGN_OR_RETURN(auto models, top.OptObject("models"));
  if (models) {
    for (const auto& [name, _] : models->object().items()) {
      PLUMB_ASSIGN_OR_RETURN(auto m, models->OptObject(name));
      if (!m) return models->Error(name, "must be a mapping");
      if (name.find('/') != std::string::npos)
        return models->Error(name, "a model name may not contain '/'");
      ModelAlias a;
      a.name = name;
      PLUMB_ASSIGN_OR_RETURN(a.spec, m->String("spec"));
      if (a.spec.find('/') == std::string::npos)
        return m->Error("spec", "must look like KIND/MODEL");
      PLUMB_ASSIGN_OR_RETURN(auto base_url, m->OptString("base_url"));
      a.base_url = base_url.value_or("");
      PLUMB_ASSIGN_OR_RETURN(auto endpoints, m->OptStringList("endpoints"));
      if (endpoints) a.endpoints = *endpoints;
      PLUMB_ASSIGN_OR_RETURN(auto key_env, m->OptString("api_key_env"));
      a.api_key_env = key_env.value_or("");
      PLUMB_ASSIGN_OR_RETURN(auto params, m->OptObject("params"));
      if (params) {
        PLUMB_ASSIGN_OR_RETURN(a.params, ReadGenerationParams(*params));
      }
      PLUMB_ASSIGN_OR_RETURN(auto concurrency, m->OptInt("concurrency"));
      if (concurrency && (*concurrency < 1 || *concurrency > 4096))
        return m->Error("concurrency", "must be between 1 and 4096");
      if (concurrency) a.concurrency = static_cast<int>(*concurrency);
      PLUMB_ASSIGN_OR_RETURN(a.rpm, m->OptNumber("rpm"));
      PLUMB_ASSIGN_OR_RETURN(a.tpm, m->OptNumber("tpm"));
      if ((a.rpm && *a.rpm <= 0) || (a.tpm && *a.tpm <= 0))
        return m->Error(a.rpm && *a.rpm <= 0 ? "rpm" : "tpm", "must be positive");
      PLUMB_ASSIGN_OR_RETURN(auto price, m->OptObject("price"));
      if (price) {
        PLUMB_ASSIGN_OR_RETURN(a.price, ReadPrice(*price));
      }
      PLUMB_ASSIGN_OR_RETURN(auto batch, m->OptBool("batch"));
      a.batch = batch.value_or(false);
      PLUMB_RETURN_IF_ERROR(m->Finish());
      c.models[name] = std::move(a);
    }
  }
  PLUMB_ASSIGN_OR_RETURN(auto prices, top.OptObject("prices"));
  if (prices) {
    for (const auto& [name, _] : prices->object().items()) {
      PLUMB_ASSIGN_OR_RETURN(auto p, prices->OptObject(name));
      if (!p)
        return prices->Error(
            name, "must be a mapping of input, output, cached_input, batch_input, batch_output");
      PLUMB_ASSIGN_OR_RETURN(c.prices[name], ReadPrice(*p));
    }
  }
  PLUMB_RETURN_IF_ERROR(top.Finish());
  return c;
}

}  // namespace plumb
