// plumb list suites|backends|graders|kinds.
#include <fmt/format.h>

#include <map>

#include "cli/commands.h"

namespace plumb::cli {
namespace {

template <typename Registry>
void PrintEntries(const Registry& registry) {
  for (const auto* e : registry.Entries()) fmt::print("{:<36} {}\n", e->name, e->description);
}

int ListSuites(const Context& ctx) {
  auto refs = DiscoverSuites(ctx.SuiteDirs());
  if (!refs) return ReportError(refs.error());
  int code = kExitOk;
  for (const auto& ref : *refs) {
    auto suite = LoadSuite(ref.manifest, ctx.kinds, ctx.graders, &ctx.Judges());
    if (!suite) {
      fmt::print("{:<22} (invalid) {}\n", ref.id, suite.error().message());
      code = kExitUsage;
      continue;
    }
    const SuiteManifest& m = suite->manifest;
    fmt::print("{:<22} v{:<3} {:<13} {:>5} items  {}\n", m.id, m.version, m.kind,
               suite->items.size(), m.title);
  }
  return code;
}

std::string PriceText(const Price& p) {
  std::string s = fmt::format("${} in / ${} out", p.input, p.output);
  if (p.cached_input) s += fmt::format(" / ${} cached in", *p.cached_input);
  return s + " per million tokens";
}

void ListModels(const Context& ctx) {
  if (ctx.config.models.empty()) {
    fmt::print("No named models ({}).\n",
               ctx.config.file.empty() ? "no plumb.yaml" : ctx.config.file.string());
  }
  for (const auto& [name, a] : ctx.config.models) {
    std::string extra;
    if (!a.base_url.empty()) extra += "  base " + a.base_url;
    if (a.concurrency) extra += fmt::format("  concurrency {}", *a.concurrency);
    if (a.rpm) extra += fmt::format("  rpm {}", *a.rpm);
    if (a.tpm) extra += fmt::format("  tpm {}", *a.tpm);
    auto price = ctx.config.PriceOf(a.spec);
    fmt::print("{:<20} {}{}  {}\n", name, a.spec, extra,
               price ? PriceText(*price) : "price unknown");
  }
  fmt::print(
      "\nPrices (USD per million tokens; plumb.yaml 'prices:' overrides, prefixes match longer "
      "names):\n");
  std::map<std::string, Price> all = DefaultPrices();
  for (const auto& [name, p] : ctx.config.prices) all[name] = p;
  for (const auto& [name, p] : all) fmt::print("  {:<22} {}\n", name, PriceText(p));
}

}  // namespace

Action SetupList(CLI::App& app, Context& ctx) {
  auto what = std::make_shared<std::string>();
  app.add_option("what", *what, "suites, backends, graders, kinds or models")
      ->required()
      ->check(CLI::IsMember({"suites", "backends", "graders", "kinds", "models"}));
  return [what, &ctx]() {
    if (*what == "suites") return ListSuites(ctx);
    if (*what == "backends") PrintEntries(ctx.backends);
    if (*what == "graders") {
      PrintEntries(ctx.graders);
      for (const auto& id : ctx.Judges().Ids()) {
        auto judge = ctx.Judges().Get(id);
        if (!judge) {
          fmt::print("{:<36} (invalid) {}\n", id, judge.error().message());
          continue;
        }
        fmt::print("{:<36} LLM judge, {}\n", (*judge)->IdVersion(),
                   (*judge)->output() == JudgeGrader::Output::kJson     ? "json"
                   : (*judge)->output() == JudgeGrader::Output::kLabels ? "labels"
                                                                        : "score 0-100");
      }
    }
    if (*what == "kinds") PrintEntries(ctx.kinds);
    if (*what == "models") ListModels(ctx);
    return kExitOk;
  };
}

}  // namespace plumb::cli
