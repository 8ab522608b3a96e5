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
struct Price {
  double input = 0;
  double output = 0;
  std::optional<double> cached_input;  // cached prompt tokens, when the provider discounts them

  // The cost of one call's usage.
  double Cost(int64_t prompt_tokens, int64_t completion_tokens) const;
};

// A named model: `--model NAME` and `--judge NAME` accept it.
struct ModelAlias {
  std::string name;
  std::string spec;  // "openai/gpt-4o"
  std::string base_url;
  std::string api_key_env;
  GenerationParams params;  // defaults below the suite's and the flags'
  std::optional<int> concurrency;
  std::optional<double> rpm;  // requests per minute
  std::optional<double> tpm;  // tokens per minute
  std::optional<Price> price;
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
