// The project configuration (plumb.yaml): named models and prices.
#ifndef PLUMB_CONFIG_H_
#define PLUMB_CONFIG_H_

#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "plumb/result.h"
#include "plumb/types.h"

namespace plumb {

// USD per million tokens.
// Batch APIs cost half the synchronous price at OpenAI, Anthropic and Google.
inline constexpr double kBatchDiscount = 0.5;

struct Price {
  double input = 0;
  double output = 0;
  std::optional<double> cached_input;  // cached prompt tokens, when the provider discounts them
  // Through the provider's batch API; default: the synchronous price x kBatchDiscount.
  std::optional<double> batch_input;
  std::optional<double> batch_output;

  // The cost of one call's usage.
  double Cost(int64_t prompt_tokens, int64_t completion_tokens) const;
  double BatchCost(int64_t prompt_tokens, int64_t completion_tokens) const;
  // The cost of a usage record ({"prompt_tokens", "completion_tokens", "batched": {...}}).
  double UsageCost(const Json& usage) const;
};

// A named model: `--model NAME` and `--judge NAME` accept it.
struct ModelAlias {
  std::string name;
  std::string spec;  // "openai/gpt-4o"
  std::string base_url;
  std::vector<std::string> endpoints;  // a pool serving the same model (with base_url, if set)
  std::string api_key_env;
  GenerationParams params;  // defaults below the suite's and the flags'
  std::optional<int> concurrency;
  std::optional<double> rpm;  // requests per minute
  std::optional<double> tpm;  // tokens per minute
  std::optional<Price> price;
  bool batch = false;  // calls go through the provider's batch API (as --batch)
};

struct Config {
  std::filesystem::path file;  // "" when there is none
  std::map<std::string, ModelAlias> models;
  std::map<std::string, Price> prices;  // by model name (the part after KIND/), prefix-matched

  // The price of `spec` ("openai/gpt-4o-2024-08-06"): an alias's own price, else the longest
  // model-name prefix in `prices`, else the built-in table (DefaultPrices()); nullopt when
  // unknown.
  std::optional<Price> PriceOf(const std::string& spec) const;
};

// Built-in list prices (USD per million tokens) of a few common models, as published by their
// providers in 2025; plumb.yaml `prices:` overrides them. docs/backends.md lists them.
const std::map<std::string, Price>& DefaultPrices();

// Reads plumb.yaml strictly. kNotFound when `path` does not exist.
Result<Config> LoadConfig(const std::filesystem::path& path);

}  // namespace plumb

#endif  // PLUMB_CONFIG_H_
