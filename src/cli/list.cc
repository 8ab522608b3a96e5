// plumb list suites|backends|graders|kinds.
#include <fmt/format.h>

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

}  // namespace

Action SetupList(CLI::App& app, Context& ctx) {
  auto what = std::make_shared<std::string>();
  app.add_option("what", *what, "suites, backends, graders or kinds")
      ->required()
      ->check(CLI::IsMember({"suites", "backends", "graders", "kinds"}));
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
    return kExitOk;
  };
}

}  // namespace plumb::cli
