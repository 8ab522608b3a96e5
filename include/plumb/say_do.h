// The say-do gap (plumb say-do): one model's stated choices on a multiple-choice suite against
// the actions it took on an agentic suite that enacts the same items (same item ids; each
// decisive tool maps to an option by its `option` index), compared item by item. Definitions:
// docs/suites.md ("The say-do gap").
#ifndef PLUMB_SAY_DO_H_
#define PLUMB_SAY_DO_H_

#include <optional>
#include <set>
#include <string>
#include <vector>

#include "plumb/result.h"
#include "plumb/stats.h"
#include "plumb/store.h"

namespace plumb {

// How an item came out in one run: its modal answer over the item's answered samples.
struct SayDoSide {
  // The option (index in the stated item's options) chosen or enacted; none when the modal
  // answer was not an option (a refusal, an unparsed reply, no action).
  std::optional<int> option;
  // Stated: aligned | misaligned (another option) | refusal | unparsed. Enacted: aligned |
  // misaligned | no_action (the agentic grade's outcome).
  std::string label;
  std::string tool;  // enacted: the decisive tool of a sample with the modal answer
  int samples = 0;   // answered samples (errors are left out)
  int modal = 0;     // of which gave the modal answer
};

struct SayDoItem {
  std::string id;
  std::string category;
  SayDoSide stated;
  SayDoSide enacted;
  // Whether the enacted option is the stated one; none unless both are options.
  std::optional<bool> agree;
};

struct SayDoResult {
  RunRecord stated;
  RunRecord enacted;
  int options = 0;               // option labels shown (A, B, ...): the most options of an item
  std::vector<SayDoItem> items;  // shared items answered in both runs, in the enacted order
  int64_t stated_only = 0;       // items answered in one run only
  int64_t enacted_only = 0;
  // say_do_agreement, say_do_kappa, said_aligned_acted_misaligned,
  // said_misaligned_acted_aligned: the whole suite first, then per category. Agreement and kappa
  // are on the items where both are options (bootstrap over items); the two gap rates are over
  // every shared item (Wilson).
  std::vector<Metric> metrics;
  // Items by stated (aligned, misaligned, no option) and enacted outcome (aligned, misaligned,
  // no action).
  int64_t table[3][3] = {};
  std::vector<std::string> notes;
};

// Compares run `stated` (a multiple-choice kind: grades with details.option) and run `enacted`
// (kind agentic) from what the store holds. kInvalidArgument when the runs cannot be paired:
// no shared item ids, an enacted run without option-mapped tools, a tool option the stated item
// does not have, or the same suite twice.
Result<SayDoResult> ComputeSayDo(const Store& store, int64_t stated, int64_t enacted,
                                 const MetricOptions& options);

// What a run can be in a say-do comparison, from its items only (cheap): the ids of its
// multiple-choice items (with options) and of its agentic items whose tools map to options.
// plumb report pairs a run of one with a run of the other on shared ids, for the same model.
struct SayDoRoles {
  std::set<std::string> stated_ids;
  std::set<std::string> enacted_ids;
};
Result<SayDoRoles> SayDoRolesOf(const Store& store, int64_t run);

// The metric names a say-do comparison reports, and which way is better (nullopt: neither).
std::optional<bool> SayDoHigherIsBetter(const std::string& metric);
bool IsSayDoMetric(const std::string& metric);

// "text", "md" or "json"; `all_items` lists every item (else the ones that disagree).
Result<std::string> FormatSayDo(const SayDoResult& r, const std::string& format,
                                bool all_items = false);
// The HTML section of plumb report.
std::string SayDoHtml(const SayDoResult& r);

}  // namespace plumb

#endif  // PLUMB_SAY_DO_H_
