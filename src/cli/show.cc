// plumb show RUN|latest: a run and its metrics.
#include <fmt/format.h>

#include "cli/commands.h"
#include "plumb/report.h"
#include "plumb/store.h"

namespace plumb::cli {

Result<int64_t> ResolveRunId(const Store& store, const std::string& ref) {
  if (ref == "latest") return store.LatestRunId();
  try {
    size_t used = 0;
    long long id = std::stoll(ref, &used);
    if (used == ref.size() && id > 0) return static_cast<int64_t>(id);
  } catch (const std::exception&) {
  }
  return InvalidArgument(fmt::format("'{}' is not a run id (a positive number or 'latest')", ref));
}

Action SetupShow(CLI::App& app, Context& ctx) {
  auto run = std::make_shared<std::string>();
  auto format = std::make_shared<std::string>("text");
  app.add_option("run", *run, "Run id or 'latest'")->required();
  app.add_option("--format", *format, "Output format")->check(CLI::IsMember({"text", "json"}));
  return [run, format, &ctx]() {
    auto store = OpenSqliteStoreReadOnly(ctx.db_path);
    if (!store) return ReportError(store.error());
    auto id = ResolveRunId(**store, *run);
    if (!id) return ReportError(id.error());
    auto record = (*store)->GetRun(*id);
    if (!record) return ReportError(record.error());
    auto metrics = (*store)->GetMetrics(*id);
    if (!metrics) return ReportError(metrics.error());
    auto text = FormatRun(*record, *metrics, *format);
    if (!text) return ReportError(text.error());
    std::fputs(text->c_str(), stdout);
    return kExitOk;
  };
}

}  // namespace plumb::cli
