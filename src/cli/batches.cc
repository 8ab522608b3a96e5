// plumb batches [RUN]: a run's provider batches (batch mode) and where each stands.
#include <fmt/format.h>

#include "cli/commands.h"
#include "plumb/batch.h"
#include "plumb/store.h"

namespace plumb::cli {

Action SetupBatches(CLI::App& app, Context& ctx) {
  struct Flags {
    std::string run = "latest";
    std::string format = "text";
  };
  auto f = std::make_shared<Flags>();
  app.add_option("run", f->run, "Run id, 'latest' or a tag")->capture_default_str();
  app.add_option("--format", f->format, "Output format")->check(CLI::IsMember({"text", "json"}));
  return [f, &ctx]() {
    auto store = OpenStoreReadOnly(ctx.db_path);
    if (!store) return ReportError(store.error());
    auto id = ResolveRunId(ctx, **store, f->run);
    if (!id) return ReportError(id.error());
    auto batches = (*store)->GetBatches(*id);
    if (!batches) return ReportError(batches.error());
    if (f->format == "json") {
      Json out = Json::array();
      for (const auto& b : *batches) {
        Json info = b.info;
        info.erase("failed_ids");
        info.erase("upload_url");  // may carry a one-time upload token
        out.push_back({{"id", b.id},
                       {"role", b.role},
                       {"provider", b.provider},
                       {"batch", b.info.value("id", "")},
                       {"state", b.state},
                       {"provider_state", b.info.value("provider_state", "")},
                       {"requests", b.custom_ids.size()},
                       {"failed_requests", b.info.value("failed_ids", Json::array()).size()},
                       {"resubmits", b.resubmits},
                       {"created_at", b.created_at},
                       {"updated_at", b.updated_at},
                       {"info", info}});
      }
      std::fputs((DumpJson(out) + "\n").c_str(), stdout);
      return kExitOk;
    }
    std::string text =
        fmt::format("run {}: {} batch{}\n", *id, batches->size(), batches->size() == 1 ? "" : "es");
    if (!batches->empty()) {
      text += fmt::format("{:<5} {:<28} {:<10} {:<34} {:<11} {:>9} {:>7}  {}\n", "id", "role",
                          "provider", "batch", "state", "requests", "failed", "updated");
    }
    for (const auto& b : *batches) {
      std::string state = b.state;
      std::string provider_state = b.info.value("provider_state", "");
      if (!provider_state.empty() && provider_state != state) state += " (" + provider_state + ")";
      text +=
          fmt::format("{:<5} {:<28} {:<10} {:<34} {:<11} {:>9} {:>7}  {}\n", b.id, b.role,
                      b.provider, b.info.value("id", "(not created)"), state, b.custom_ids.size(),
                      b.info.value("failed_ids", Json::array()).size(), b.updated_at);
    }
    std::fputs(text.c_str(), stdout);
    return kExitOk;
  };
}

}  // namespace plumb::cli
