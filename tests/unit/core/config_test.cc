// plumb.yaml: named models, prices, strict errors; price lookup by longest prefix.
#include "plumb/config.h"

#include <gtest/gtest.h>

#include "subprocess.h"

namespace plumb {
namespace {

using testing::TempDir;

TEST(Config, ReadsModelsAndPrices) {
  TempDir tmp;
  std::string path = tmp.Write("plumb.yaml",
                               "models:\n"
                               "  fast:\n"
                               "    spec: openai/gpt-4o-mini\n"
                               "    base_url: http://127.0.0.1:9/v1\n"
                               "    api_key_env: MY_KEY\n"
                               "    params: {temperature: 0.5}\n"
                               "    concurrency: 4\n"
                               "    rpm: 60\n"
                               "    price: {input: 1, output: 2}\n"
                               "prices:\n"
                               "  my-local: {input: 0, output: 0}\n"
                               "  gpt-4o: {input: 5, output: 20, cached_input: 2.5}\n");
  auto c = LoadConfig(path);
  ASSERT_TRUE(c.has_value()) << c.error().message();
  const ModelAlias& a = c->models.at("fast");
  EXPECT_EQ(a.spec, "openai/gpt-4o-mini");
  EXPECT_EQ(*a.params.temperature, 0.5);
  EXPECT_EQ(*a.concurrency, 4);
  EXPECT_EQ(*a.rpm, 60);
  EXPECT_DOUBLE_EQ(c->PriceOf("openai/gpt-4o-mini")->input, 1);        // the alias's own price
  EXPECT_DOUBLE_EQ(c->PriceOf("openai/gpt-4o-2024-08-06")->input, 5);  // override, by prefix
  EXPECT_DOUBLE_EQ(c->PriceOf("openai/my-local-7b")->output, 0);
  EXPECT_DOUBLE_EQ(c->PriceOf("anthropic/claude-3-5-haiku-latest")->output, 4);  // built-in table
  EXPECT_FALSE(c->PriceOf("openai/unknown-model").has_value());
  EXPECT_DOUBLE_EQ(c->PriceOf("builtin/random")->input, 0);
  EXPECT_NEAR(Price({2.5, 10, std::nullopt}).Cost(1000000, 100000), 3.5, 1e-12);
}

TEST(Config, LongestPrefixWins) {
  Config c;
  EXPECT_DOUBLE_EQ(c.PriceOf("openai/gpt-4o-mini-2024-07-18")->input, 0.15);  // not gpt-4o's 2.50
}

TEST(Config, ErrorsNameFileLineAndField) {
  TempDir tmp;
  std::string path = tmp.Write("plumb.yaml", "models:\n  a:\n    spec: gpt-4o\n");
  EXPECT_EQ(LoadConfig(path).error().message(),
            path + ":3: field 'models.a.spec' must look like KIND/MODEL");
  tmp.Write("plumb.yaml", "models:\n  a:\n    spec: openai/x\n    temprature: 0\n");
  EXPECT_EQ(LoadConfig(path).error().message(),
            path + ":4: field 'models.a.temprature' is not a known setting");
  tmp.Write("plumb.yaml", "prices:\n  x: {input: 1}\n");
  EXPECT_EQ(LoadConfig(path).error().message(),
            path + ":2: field 'prices.x.output' is required (USD per million tokens)");
  EXPECT_EQ(LoadConfig(tmp.path() + "/none.yaml").error().code(), StatusCode::kNotFound);
}

}  // namespace
}  // namespace plumb
