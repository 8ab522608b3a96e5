// plumb leaderboard: models ranked by each suite's primary metric.
#include "cli/commands.h"
#include "plumb/report.h"
#include "plumb/store.h"

namespace plumb::cli {

Action SetupLeaderboard(CLI::App& app, Context& ctx) {
  auto suite = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("md");
  app.add_option("--suite", *suite, "Only this suite");
  app.add_option("--format", *format, "Output format")->check(CLI::IsMember({"md", "csv", "json"}));
  return [suite, format, &ctx]() {
    auto store = OpenSqliteStoreReadOnly(ctx.db_path);
    if (!store) return ReportError(store.error());
    auto rows = BuildLeaderboard(**store, *suite);
    if (!rows) return ReportError(rows.error());
    auto text = FormatLeaderboard(*rows, *format);
    if (!text) return ReportError(text.error());
    std::fputs(text->c_str(), stdout);
    return kExitOk;
  };
}

}  // namespace plumb::cli
