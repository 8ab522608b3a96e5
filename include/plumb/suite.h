// Suites are data: benchmarks/<id>/suite.yaml plus item files. A suite kind (choice, ...) is the
// code that turns items into prompts, replies into grades and grades into metrics.
#ifndef PLUMB_SUITE_H_
#define PLUMB_SUITE_H_

#include <filesystem>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "plumb/grader.h"
#include "plumb/json.h"
#include "plumb/judge.h"
#include "plumb/registry.h"
#include "plumb/result.h"
#include "plumb/stats.h"
#include "plumb/types.h"

namespace plumb {

// The common part of suite.yaml. Kind-specific keys are read by the kind.
struct SuiteManifest {
  std::string id;  // equals the folder name, kebab-case
  int version = 1;
  std::string kind;
  std::string title;
  std::string description;
  std::filesystem::path file;   // the suite.yaml
  std::string content_hash;     // SHA-256 (hex) of suite.yaml and every data file
  GenerationParams generation;  // defaults, overridden by CLI flags
  int samples = 1;              // samples (epochs) per item unless --epochs is given
  // `item_samples: true`: an item's own `samples` count (e.g. Emergent Misalignment's
  // samples_per_paraphrase) replaces the run's epochs for that item.
  bool item_samples = false;
  std::vector<std::filesystem::path> data_files;
};

// One planned sample: an item at one epoch, with its presentation (e.g. the option order)
// decided before any call, stored with the results so re-grading and resume see what the model
// saw.
struct Sample {
  size_t item = 0;  // index into Suite::items
  int epoch = 0;
  Json presentation = Json::object();
};

// A turn sent to the model.
struct Turn {
  std::vector<Message> messages;
  std::vector<std::string> option_labels;  // for CallHints
  std::vector<std::string> option_texts;   // for CallHints (empty when not known apart)
  std::vector<ToolSpec> tools;             // the tools the model may call (in the order shown)
  std::string tool_choice;                 // "auto" or "required" with tools
};

// A finished turn: what was sent and what came back.
struct Exchange {
  std::vector<Message> messages;
  Completion completion;
};

// One LLM judgment a finished sample needs: which grader, on what question and reply.
struct JudgeTask {
  std::shared_ptr<const JudgeGrader> grader;
  std::string question;
  std::string answer;
  std::optional<std::string> template_override;  // e.g. a published judge prompt of the item
};

// What metrics are computed from: one sample's grades (empty when it ended in an error).
struct SampleOutcome {
  size_t item = 0;
  int epoch = 0;
  bool responded = false;  // false: the model call failed; the sample is an error
  std::vector<Grade> grades;
};

// Computes a kind's metrics from outcomes given one at a time (SuiteKind::StartMetrics).
class MetricsAccumulator {
 public:
  virtual ~MetricsAccumulator() = default;
  virtual void Add(SampleOutcome outcome) = 0;
  // The metrics of everything added; called once.
  virtual std::vector<Metric> Finish() = 0;
};

// How an item's canonical fields are named in a data file (suite.yaml `fields:`).
struct ItemSource {
  const SourceMap& source;
  const std::map<std::string, std::string>& names;  // canonical -> source name
  std::string Where() const { return source.Where(""); }
  std::string Name(const std::string& canonical) const;
  // "<file>:<line>: field '<source name>' <what>"
  Status Error(const std::string& canonical, const std::string& what) const;
};

// The behaviour of one suite kind, configured from its manifest. Thread-safe after creation.
class SuiteKind {
 public:
  virtual ~SuiteKind() = default;
  SuiteKind() = default;
  SuiteKind(const SuiteKind&) = delete;
  SuiteKind& operator=(const SuiteKind&) = delete;

  // Canonical item fields this kind reads besides id, category and metadata.
  virtual std::vector<std::string> ItemFields() const = 0;
  // Validates and normalises item.fields; errors name file, line and field.
  virtual Status CheckItem(Item& item, const ItemSource& where) const = 0;
  // Turns one checked item into the items that are run: one per parameter setting, or with
  // and without a user biography. Their ids must be unique in the suite. Default: the item.
  virtual Result<std::vector<Item>> Expand(Item item, const ItemSource& where) const;

  // Plans the samples of `selected` items for one epoch. Epochs are planned independently, so a
  // run of many epochs is planned (and held) one epoch at a time. The default plans each item
  // with an empty presentation.
  virtual std::vector<Sample> PlanEpoch(const std::vector<Item>& items,
                                        const std::vector<size_t>& selected, int epoch,
                                        uint64_t seed) const;
  // Every epoch from 0 to epochs - 1, in order.
  std::vector<Sample> Plan(const std::vector<Item>& items, const std::vector<size_t>& selected,
                           int epochs, uint64_t seed) const;

  virtual Result<Turn> FirstTurn(const Item& item, const Sample& sample) const = 0;
  // The next turn of a multi-turn protocol, or nullopt when the conversation is complete.
  virtual Result<std::optional<Turn>> NextTurn(const Item& item, const Sample& sample,
                                               const std::vector<Exchange>& history) const;

  // Rule grades for a finished conversation. Never fails: a grader that cannot decide yields a
  // Grade with status kError.
  virtual std::vector<Grade> GradeSample(const Item& item, const Sample& sample,
                                         const std::vector<Exchange>& history) const = 0;

  // Whether this kind's samples are judged by LLM judges (then a run needs --judge).
  bool NeedsJudges() const { return JudgmentsPerSample() > 0; }
  // Model turns per sample and judgments per sample and judge, for cost estimates.
  virtual int TurnsPerSample() const { return 1; }
  virtual int JudgmentsPerSample() const { return 0; }
  // The judgments a finished conversation needs; the runner sends them to every judge model
  // and stores the aggregated grade under the grader's id@version.
  virtual std::vector<JudgeTask> JudgeTasks(const Item& item, const Sample& sample,
                                            const std::vector<Exchange>& history) const {
    (void)item, (void)sample, (void)history;
    return {};
  }

  // Metrics over every planned sample of a run (items indexes into `items`), each with the
  // model (clusters keyed by item id, or by what groups items) that paired comparisons use.
  // Outcomes come in (epoch, item) order.
  virtual std::vector<Metric> Metrics(const std::vector<Item>& items,
                                      const std::vector<SampleOutcome>& outcomes,
                                      const MetricOptions& options) const = 0;
  // The same metrics, fed one outcome at a time in any order, so that a kind can keep what it
  // needs per item instead of every sample. The default keeps the outcomes and calls Metrics().
  // `items` must outlive the accumulator.
  virtual std::unique_ptr<MetricsAccumulator> StartMetrics(const std::vector<Item>& items,
                                                           const MetricOptions& options) const;
  // The headline metric, shown on leaderboards.
  virtual std::string PrimaryMetric() const = 0;
  // Proportion metrics whose clusters are single items, which get epoch reducers (majority,
  // pass@k, pass^k) when a run has several epochs. Default: the primary metric.
  virtual std::vector<std::string> ReducedMetrics() const { return {PrimaryMetric()}; }
  // Whether a higher value of the primary metric is better.
  virtual bool HigherIsBetter() const { return true; }

  // An item's options in file order and which of them are aligned (empty: none is), for the
  // answer-only baselines (builtin/longest, builtin/shortest, builtin/option-only). nullopt when
  // the kind shows no options apart (open prompts, agents, judged kinds, labelled blocks).
  struct ItemOptions {
    std::vector<std::string> texts;
    std::vector<size_t> aligned;
  };
  virtual std::optional<ItemOptions> OptionsOf(const Item& item) const {
    (void)item;
    return std::nullopt;
  }
};

// A loaded suite: manifest, items and the kind that runs them.
struct Suite {
  SuiteManifest manifest;
  std::vector<Item> items;
  std::shared_ptr<const SuiteKind> kind;  // shared: Suite is a copyable value
};

// What a kind factory gets: the manifest (the kind reads its own keys from it) and registries.
struct SuiteKindContext {
  FieldReader* manifest = nullptr;  // not owned
  std::filesystem::path dir;        // the suite folder
  const GraderRegistry* graders = nullptr;
  const JudgeLibrary* judges = nullptr;  // null: judged kinds cannot be loaded
};

using SuiteKindRegistry = Registry<SuiteKind, SuiteKindContext>;

// Adds the built-in suite kinds (choice, ...).
void RegisterBuiltinSuiteKinds(SuiteKindRegistry& registry);

// Where a suite lives.
struct SuiteRef {
  std::string id;
  std::filesystem::path manifest;
};

// Finds every <dir>/<id>/suite.yaml under each of `dirs` (not recursive beyond one level).
// Later dirs may not redefine an id found in an earlier one (kInvalidArgument).
Result<std::vector<SuiteRef>> DiscoverSuites(const std::vector<std::filesystem::path>& dirs);

// Loads and validates a suite. Any malformed input is kInvalidArgument naming file:line.
// `judges` finds the LLM-judge graders that judged kinds name.
// `overlay` (an object) sets manifest keys as if suite.yaml had them (plumb run --perturb); it
// is part of the content hash.
Result<Suite> LoadSuite(const std::filesystem::path& manifest, const SuiteKindRegistry& kinds,
                        const GraderRegistry& graders, const JudgeLibrary* judges = nullptr,
                        const Json* overlay = nullptr);

}  // namespace plumb

#endif  // PLUMB_SUITE_H_
