// The perturbation grid of the choice-style kinds (manifest key `perturbations`, or
// plumb run --perturb): the same items under several presentations (option order, labels,
// system prompt), each a variant of every item, so that a run says whether its score survives
// a change of presentation. docs/suite-format.md "Perturbations", docs/statistics.md
// "Stability".
#ifndef PLUMB_SUITES_PERTURBATIONS_H_
#define PLUMB_SUITES_PERTURBATIONS_H_

#include <map>
#include <string>
#include <vector>

#include "plumb/json.h"
#include "suites/choice_protocol.h"

namespace plumb::suites {

// The most variants a grid may have.
inline constexpr size_t kMaxVariants = 256;

struct PresentationVariant {
  std::string name;  // "order=reversed,labels=numbers"
  enum class Order { kBalanced, kFile, kReversed, kRotate };
  Order order = Order::kBalanced;
  int rotate = 0;      // kRotate: the file order shifted by this many positions
  int paraphrase = 0;  // 0: the item's own wording; k: its k-th paraphrase
  ChoiceProtocol::Variant protocol;
};

// Reads `perturbations` from the manifest: a list of axes (each with its default levels) or a
// mapping from axis to its levels. Axes and levels:
//   order: balanced (the suite's own order), file, reversed, rotate-K; default balanced, file,
//          reversed and rotate-1 .. rotate-(`max_options` - 1);
//   labels: letters, numbers, suite (its own labels, when it has them); default all of them;
//   answer_format: label (reply with the option's label), text (the options are shown without
//          labels and the reply names the chosen one by its full text); default both;
//   system_prompt: suite, none, or the text of another system prompt; default suite, none;
//   paraphrases: original, paraphrase-K (the item's K-th `paraphrases` entry); default
//          original, paraphrase-1. An item without paraphrase K has no item of that variant.
// The grid is every combination, in that order. Empty when the key is absent. An axis named in
// `refused` (axis -> why, e.g. "the scenario is the system prompt") is an error.
Result<std::vector<PresentationVariant>> ReadPerturbations(
    FieldReader& manifest, const ChoiceProtocol& protocol, int max_options,
    const std::map<std::string, std::string>& refused = {});

// An item's other wordings (`paraphrases`: a list of non-empty strings), checked; absent: none.
Status CheckParaphrases(const Json& fields, const ItemSource& where);

// One item per variant: "<id>~<variant>", with the variant's index in fields.variant and `id`
// in fields.base. An item without the paraphrase a variant asks for has no item of that
// variant. Without a grid, the item itself.
std::vector<Item> ExpandVariants(Item item, const std::vector<PresentationVariant>& variants);

// A grid sample's presentation: `presentation.order` (the kind's own order) becomes the
// variant's, and `presentation.variant` records the variant's name. Nothing when `variant` is
// nullptr.
void PresentVariant(const PresentationVariant* variant, Json& presentation);

// The variants' names, in grid order.
std::vector<std::string> VariantNames(const std::vector<PresentationVariant>& variants);

// The wording of an item's question under `variant`: its paraphrase for a paraphrase level
// (ExpandVariants made sure the item has it), else `own`.
std::string WordingOf(const PresentationVariant* variant, const Item& item, std::string own);

// The variant of an item of ExpandVariants; nullptr without a grid.
const PresentationVariant* VariantOf(const std::vector<PresentationVariant>& variants,
                                     const Item& item);

// The order of an item's n options (indexes into its options as in the file) under `variant`;
// `balanced` is the order the suite itself plans.
std::vector<int> VariantOrder(const PresentationVariant& variant, int n,
                              const std::vector<int>& balanced);

}  // namespace plumb::suites

#endif  // PLUMB_SUITES_PERTURBATIONS_H_
