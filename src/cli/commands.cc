// The table of subcommands, global flags, and the single catch-all that maps failures to exit
// codes.
#include "cli/commands.h"

#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <filesystem>

#include "plumb/log.h"
#include "plumb/text.h"
#include "plumb/version.h"

namespace plumb::cli {
namespace {

struct CommandEntry {
  const char* name;
  const char* help;
  Action (*setup)(CLI::App&, Context&);
};

// The one list of subcommands.
const CommandEntry kCommands[] = {
    {"run", "Evaluate a model on a suite and record the results", SetupRun},
    {"show", "Show a run and its metrics", SetupShow},
    {"leaderboard",
     "Rank models per suite (md, csv, json, LaTeX, HTML) with intervals and baselines",
     SetupLeaderboard},
    {"report", "Write a self-contained HTML report: leaderboard, charts, heat maps, every item",
     SetupReport},
    {"serve", "Serve the report, leaderboard and a JSON API from the database on localhost",
     SetupServe},
    {"list", "List suites, backends, graders or suite kinds", SetupList},
    {"resume", "Continue an interrupted, failed or killed run: send only what never finished",
     SetupResume},
    {"work",
     "Work on a run as one of many cooperating processes (any machines, one --db): each "
     "sample once",
     SetupWork},
    {"rescore", "Grade the stored replies of a run again (new judges), as a new linked run",
     SetupRescore},
    {"judge-check", "Measure a judge against human labels before trusting it", SetupJudgeCheck},
    {"compare",
     "Compare two runs of a suite item by item: paired differences, intervals, p-values, flips",
     SetupCompare},
    {"gate", "CI release gate: fail on a significant regression beyond a margin, not on noise",
     SetupGate},
    {"say-do",
     "Stated choices against enacted ones on the same items: agreement, kappa, the say-do gap",
     SetupSayDo},
    {"tag", "Label a run (e.g. production) so gates and comparisons can name it", SetupTag},
    {"batches", "List a run's provider batches (--batch) and their states", SetupBatches},
    {"db", "Results databases: copy runs between SQLite and PostgreSQL (db copy)", SetupDb},
};

// The last resort for an exception that escapes a thread of ours (every interface returns
// Status; an escape is a bug): a clear message and exit 1 instead of an abort. A run in progress
// stays resumable: its lease expires and `plumb resume` continues it.
[[noreturn]] void OnTerminate() {
  std::string what = "an unknown exception";
  if (std::exception_ptr e = std::current_exception()) {
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      what = x.what();
    } catch (...) {
    }
  }
  std::string line = "plumb: internal error: " + Redact(QuoteInput(what, 500)) +
                     " (a bug; an unfinished run can be continued with plumb resume)\n";
  (void)!write(STDERR_FILENO, line.data(), line.size());
  std::_Exit(kExitRunFailed);
}

// Every key plumb may be configured with is known for redaction from the start, whichever
// backend uses it: a key a model, proxy or subprocess echoes never reaches the log or the store.
void RegisterConfiguredSecrets(const Config& config) {
  std::vector<std::string> names = {"OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY",
                                    "GOOGLE_API_KEY", "PGPASSWORD"};
  for (const auto& [_, alias] : config.models) {
    if (!alias.api_key_env.empty()) names.push_back(alias.api_key_env);
  }
  for (const auto& n : names) {
    if (const char* v = std::getenv(n.c_str()); v && *v) RegisterSecret(v);
  }
}

// Ctrl-C (SIGINT) and SIGTERM (kill, a container or pod being stopped): finish what is in
// flight, commit, and exit 130. A second one stops at once.
void OnStopSignal(int sig) {
  Interrupted().store(true);
  std::signal(sig, SIG_DFL);
}

}  // namespace

std::atomic<bool>& Interrupted() {
  static std::atomic<bool> flag{false};
  return flag;
}

Context::Context() {
  RegisterBuiltinBackends(backends);
  RegisterBuiltinGraders(graders);
  RegisterBuiltinSuiteKinds(kinds);
}

std::vector<std::filesystem::path> Context::SuiteDirs() const {
  std::vector<std::filesystem::path> dirs;
  std::error_code ec;
  if (std::filesystem::is_directory("benchmarks", ec)) {
    dirs.emplace_back("benchmarks");
  } else if (std::filesystem::is_directory(std::filesystem::path(PLUMB_SOURCE_DIR) / "benchmarks",
                                           ec)) {
    dirs.push_back(std::filesystem::path(PLUMB_SOURCE_DIR) / "benchmarks");
  }
  for (const auto& d : extra_suite_dirs) dirs.emplace_back(d);
  return dirs;
}

std::vector<std::filesystem::path> Context::GraderDirs() const {
  std::vector<std::filesystem::path> dirs;
  std::error_code ec;
  if (std::filesystem::is_directory("graders", ec)) {
    dirs.emplace_back("graders");
  } else if (std::filesystem::is_directory(std::filesystem::path(PLUMB_SOURCE_DIR) / "graders",
                                           ec)) {
    dirs.push_back(std::filesystem::path(PLUMB_SOURCE_DIR) / "graders");
  }
  for (const auto& d : extra_grader_dirs) dirs.emplace_back(d);
  return dirs;
}

const JudgeLibrary& Context::Judges() const {
  if (!judges_) judges_ = std::make_unique<JudgeLibrary>(GraderDirs());
  return *judges_;
}

Result<Suite> Context::LoadSuiteByName(const std::string& name, const Json* overlay) const {
  std::error_code ec;
  std::filesystem::path p(name);
  if (name.find('/') != std::string::npos || p.extension() == ".yaml") {
    if (std::filesystem::is_directory(p, ec)) p /= "suite.yaml";
    if (!std::filesystem::exists(p, ec))
      return NotFound(fmt::format("suite file '{}' does not exist", p.string()));
    return LoadSuite(p, kinds, graders, &Judges(), overlay);
  }
  PLUMB_ASSIGN_OR_RETURN(auto refs, DiscoverSuites(SuiteDirs()));
  std::string best;
  size_t best_d = 4;
  for (const auto& ref : refs) {
    if (ref.id == name) return LoadSuite(ref.manifest, kinds, graders, &Judges(), overlay);
    size_t d = EditDistance(name, ref.id);
    if (d < best_d) best_d = d, best = ref.id;
  }
  std::string hint =
      best.empty() ? " (see plumb list suites)" : fmt::format(" (did you mean '{}'?)", best);
  return NotFound(fmt::format("unknown suite '{}'{}", name, hint));
}

ProgressMode ParseProgress(const std::string& s) {
  if (s == "bar") return ProgressMode::kBar;
  if (s == "lines") return ProgressMode::kLines;
  if (s == "none") return ProgressMode::kNone;
  return ProgressMode::kAuto;
}

Result<Suite> Context::LoadSuiteOfRun(const RunRecord& run) const {
  // A run with --perturb planned the grid it names.
  Json overlay = Json::object();
  if (run.settings.contains("perturb")) overlay["perturbations"] = run.settings["perturb"];
  const Json* o = overlay.empty() ? nullptr : &overlay;
  Result<Suite> suite = LoadSuiteByName(run.suite_id, o);
  if (suite || suite.error().code() != StatusCode::kNotFound ||
      !run.settings.contains("suite_file")) {
    return suite;
  }
  return LoadSuiteByName(run.settings["suite_file"].get<std::string>(), o);
}

Status Context::LoadConfigFile() {
  std::error_code ec;
  std::filesystem::path path = config_path.empty() ? std::filesystem::path("plumb.yaml")
                                                   : std::filesystem::path(config_path);
  if (config_path.empty() && !std::filesystem::exists(path, ec)) return Status();
  PLUMB_ASSIGN_OR_RETURN(config, LoadConfig(path));
  return Status();
}

const ModelAlias* Context::Alias(const std::string& spec) const {
  auto it = config.models.find(spec);
  return it == config.models.end() ? nullptr : &it->second;
}

std::string Context::ResolveSpec(const std::string& spec) const {
  const ModelAlias* alias = Alias(spec);
  return alias ? alias->spec : spec;
}

Status WriteOutputFile(const std::string& path, const std::string& text, bool append) {
  std::error_code ec;
  std::filesystem::path p(path);
  if (p.has_parent_path()) std::filesystem::create_directories(p.parent_path(), ec);
  auto failed = [&](const std::string& what) {
    return Internal(fmt::format("cannot write '{}': {}", path, what));
  };
  if (append) {
    auto before = std::filesystem::exists(p, ec) ? std::filesystem::file_size(p, ec) : 0;
    std::FILE* f = std::fopen(path.c_str(), "ab");
    if (f == nullptr) return failed(std::strerror(errno));
    bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
    int err = errno;
    ok = std::fclose(f) == 0 && ok;
    if (!ok) {
      std::filesystem::resize_file(p, before, ec);
      return failed(std::strerror(err));
    }
    return Status();
  }
  std::string tmp = fmt::format("{}.tmp.{}", path, static_cast<long>(getpid()));
  std::FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return failed(std::strerror(errno));
  bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  int err = errno;
  ok = std::fflush(f) == 0 && ok;
  if (!ok) err = errno;
  ok = std::fclose(f) == 0 && ok;
  if (ok) std::filesystem::rename(tmp, p, ec);
  if (!ok || ec) {
    std::filesystem::remove(tmp, ec);
    return failed(ok ? ec.message() : std::strerror(err));
  }
  return Status();
}

int ReportError(const Status& status) {
  // Messages quote input; however large that was, a message stays readable.
  std::fprintf(stderr, "plumb: error: %s\n", Redact(QuoteInput(status.message(), 2000)).c_str());
  switch (status.code()) {
    case StatusCode::kInvalidArgument:
    case StatusCode::kNotFound:
    case StatusCode::kUnauthenticated:
    case StatusCode::kAborted:  // another process runs it: nothing was done
      return kExitUsage;
    case StatusCode::kCancelled:
      return kExitInterrupted;
    default:
      return kExitRunFailed;
  }
}

int Main(int argc, char** argv) {
  std::set_terminate(OnTerminate);
  try {
    Context ctx;
    CLI::App app{"plumb: measures how well AI models are aligned", "plumb"};
    app.set_version_flag("--version",
                         std::string("plumb ") + PLUMB_VERSION + " (" + PLUMB_GIT_SHA + ")");
    app.require_subcommand(1);
    app.fallthrough();
    app.option_defaults()->always_capture_default();
    app.add_option("--db", ctx.db_path,
                   "Results database: a SQLite file, or "
                   "postgresql://user[:password]@host:port/dbname")
        ->envname("PLUMB_DB");
    app.add_option("--suites-dir", ctx.extra_suite_dirs, "Another folder of suites (repeatable)");
    app.add_option("--graders-dir", ctx.extra_grader_dirs,
                   "Another folder of judge graders (repeatable)");
    app.add_flag("-v,--verbose", ctx.verbose, "Log more (retries, requests)");
    app.add_option("--config", ctx.config_path,
                   "Project configuration (named models, prices); default ./plumb.yaml");

    std::vector<std::pair<CLI::App*, Action>> actions;
    for (const auto& c : kCommands) {
      CLI::App* sub = app.add_subcommand(c.name, c.help);
      actions.emplace_back(sub, c.setup(*sub, ctx));
    }
    try {
      app.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
      int code = app.exit(e);
      return code == 0 ? kExitOk : kExitUsage;
    }
    if (ctx.verbose) SetLogLevel(LogLevel::kInfo);
    if (Status s = ctx.LoadConfigFile(); !s.ok()) return ReportError(s);
    RegisterConfiguredSecrets(ctx.config);
    std::signal(SIGINT, OnStopSignal);
    std::signal(SIGTERM, OnStopSignal);
    for (auto& [sub, action] : actions) {
      if (sub->parsed()) return action();
    }
    return kExitUsage;
  } catch (const std::exception& e) {
    std::fprintf(stderr,
                 "plumb: internal error: %s (a bug; an unfinished run can be continued with plumb "
                 "resume)\n",
                 Redact(QuoteInput(e.what(), 500)).c_str());
    return kExitRunFailed;
  } catch (...) {
    std::fprintf(stderr, "plumb: internal error: an unknown exception (a bug)\n");
    return kExitRunFailed;
  }
}

}  // namespace plumb::cli
