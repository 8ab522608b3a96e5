// The perturbation grid (see perturbations.h).
#include "suites/perturbations.h"

#include <fmt/format.h>

#include <map>

namespace plumb::suites {
namespace {

struct Level {
  std::string name;
  PresentationVariant v;  // the fields of this axis set
};

using Axis = std::vector<Level>;

Result<Level> OrderLevel(const std::string& s, const FieldReader& r) {
  Level l{"order=" + s, {}};
  if (s == "balanced") {
    l.v.order = PresentationVariant::Order::kBalanced;
  } else if (s == "file") {
    l.v.order = PresentationVariant::Order::kFile;
  } else if (s == "reversed") {
    l.v.order = PresentationVariant::Order::kReversed;
  } else if (s.rfind("rotate-", 0) == 0 && s.size() > 7 &&
             s.find_first_not_of("0123456789", 7) == std::string::npos && s.size() < 10) {
    l.v.order = PresentationVariant::Order::kRotate;
    l.v.rotate = std::stoi(s.substr(7));
  } else {
    return r.Error(
        "perturbations",
        fmt::format("has order level '{}'; the levels are balanced, file, reversed and rotate-K",
                    s));
  }
  return l;
}

Result<Level> LabelLevel(const std::string& s, const ChoiceProtocol& protocol,
                         const FieldReader& r) {
  Level l{"labels=" + s, {}};
  using Style = ChoiceProtocol::Variant::LabelStyle;
  if (s == "letters") {
    l.v.protocol.labels = Style::kLetters;
  } else if (s == "numbers") {
    l.v.protocol.labels = Style::kNumbers;
  } else if (s == "suite" && protocol.has_custom_labels()) {
    l.v.protocol.labels = Style::kSuite;
  } else {
    return r.Error("perturbations",
                   fmt::format("has labels level '{}'; the levels are letters, numbers{}", s,
                               protocol.has_custom_labels() ? " and suite" : ""));
  }
  return l;
}

Level SystemLevel(const std::string& s, size_t index) {
  Level l;
  if (s == "suite") {
    l.name = "system=suite";
  } else if (s == "none") {
    l.name = "system=none";
    l.v.protocol.replace_system = true;
  } else {
    l.name = fmt::format("system=variant-{}", index);
    l.v.protocol.replace_system = true;
    l.v.protocol.system = s;
  }
  return l;
}

Result<Axis> ReadAxis(const std::string& axis, const std::vector<std::string>& levels,
                      const ChoiceProtocol& protocol, int max_options, const FieldReader& r) {
  Axis out;
  if (axis != "order" && axis != "labels" && axis != "answer_format" && axis != "system_prompt" &&
      axis != "paraphrases") {
    return r.Error("perturbations", fmt::format("names an unknown axis '{}' (order, labels, "
                                                "answer_format, system_prompt, paraphrases)",
                                                axis));
  }
  std::vector<std::string> names = levels;
  if (names.empty()) {
    if (axis == "order") {
      names = {"balanced", "file", "reversed"};
      for (int k = 1; k < max_options; ++k) {
        if (max_options == 2 && k == 1) break;  // rotate-1 of two options is `reversed`
        names.push_back(fmt::format("rotate-{}", k));
      }
    } else if (axis == "labels") {
      names = {"letters", "numbers"};
      if (protocol.has_custom_labels()) names.push_back("suite");
    } else if (axis == "system_prompt") {
      names = {"suite", "none"};
    } else if (axis == "answer_format") {
      names = {"label", "text"};
    } else if (axis == "paraphrases") {
      names = {"original", "paraphrase-1"};
    }
  }
  for (size_t i = 0; i < names.size(); ++i) {
    if (axis == "order") {
      PLUMB_ASSIGN_OR_RETURN(Level l, OrderLevel(names[i], r));
      out.push_back(std::move(l));
    } else if (axis == "labels") {
      PLUMB_ASSIGN_OR_RETURN(Level l, LabelLevel(names[i], protocol, r));
      out.push_back(std::move(l));
    } else if (axis == "answer_format") {
      if (names[i] != "label" && names[i] != "text") {
        return r.Error(
            "perturbations",
            fmt::format("has answer_format level '{}'; the levels are label and text", names[i]));
      }
      Level l{"answer=" + names[i], {}};
      l.v.protocol.text_answer = names[i] == "text";
      out.push_back(std::move(l));
    } else if (axis == "paraphrases") {
      const std::string& s = names[i];
      Level l{"wording=" + s, {}};
      if (s.rfind("paraphrase-", 0) == 0 && s.size() > 11 && s.size() < 15 &&
          s.find_first_not_of("0123456789", 11) == std::string::npos &&
          std::stoi(s.substr(11)) > 0) {
        l.v.paraphrase = std::stoi(s.substr(11));
      } else if (s != "original") {
        return r.Error("perturbations",
                       fmt::format("has paraphrases level '{}'; the levels are original and "
                                   "paraphrase-K",
                                   s));
      }
      out.push_back(std::move(l));
    } else {
      out.push_back(SystemLevel(names[i], i));
    }
  }
  return out;
}

}  // namespace

Result<std::vector<PresentationVariant>> ReadPerturbations(
    FieldReader& r, const ChoiceProtocol& protocol, int max_options,
    const std::map<std::string, std::string>& refused) {
  const Json* p = r.Get("perturbations");
  std::vector<PresentationVariant> out;
  if (p == nullptr) return out;
  std::vector<std::pair<std::string, std::vector<std::string>>> axes;
  if (p->is_array()) {
    for (const auto& a : *p) {
      if (!a.is_string()) return r.Error("perturbations", "must list axis names");
      axes.emplace_back(a.get<std::string>(), std::vector<std::string>());
    }
  } else if (p->is_object()) {
    for (const auto& [axis, levels] : p->items()) {
      std::vector<std::string> names;
      if (!levels.is_array() || levels.empty()) {
        return r.Error("perturbations", fmt::format("must list the levels of axis '{}'", axis));
      }
      for (const auto& l : levels) {
        if (!l.is_string()) {
          return r.Error("perturbations",
                         fmt::format("must give the levels of '{}' as strings", axis));
        }
        names.push_back(l.get<std::string>());
      }
      axes.emplace_back(axis, std::move(names));
    }
  } else {
    return r.Error("perturbations", "must be a list of axes or a mapping of axis to levels");
  }
  if (axes.empty()) return r.Error("perturbations", "must name at least one axis");
  // The grid, axis by axis in the order order, labels, system_prompt.
  std::map<std::string, Axis> by_name;
  for (const auto& [axis, levels] : axes) {
    if (by_name.count(axis)) return r.Error("perturbations", "names axis '" + axis + "' twice");
    if (auto why = refused.find(axis); why != refused.end()) {
      return r.Error("perturbations", fmt::format("names axis '{}', which this suite's kind does "
                                                  "not offer: {}",
                                                  axis, why->second));
    }
    PLUMB_ASSIGN_OR_RETURN(Axis a, ReadAxis(axis, levels, protocol, max_options, r));
    by_name[axis] = std::move(a);
  }
  std::vector<PresentationVariant> grid(1);
  for (const char* axis : {"order", "labels", "answer_format", "system_prompt", "paraphrases"}) {
    auto it = by_name.find(axis);
    if (it == by_name.end()) continue;
    std::vector<PresentationVariant> next;
    for (const auto& g : grid) {
      for (const auto& l : it->second) {
        PresentationVariant v = g;
        v.name += (v.name.empty() ? "" : ",") + l.name;
        if (std::string(axis) == "order") {
          v.order = l.v.order;
          v.rotate = l.v.rotate;
        } else if (std::string(axis) == "labels") {
          v.protocol.labels = l.v.protocol.labels;
        } else if (std::string(axis) == "answer_format") {
          v.protocol.text_answer = l.v.protocol.text_answer;
        } else if (std::string(axis) == "paraphrases") {
          v.paraphrase = l.v.paraphrase;
        } else {
          v.protocol.replace_system = l.v.protocol.replace_system;
          v.protocol.system = l.v.protocol.system;
        }
        next.push_back(std::move(v));
      }
    }
    grid = std::move(next);
  }
  if (grid.size() < 2) return r.Error("perturbations", "must give at least two variants");
  // Every item is expanded once per variant: a grid far beyond any comparison a reader can make
  // would only multiply the run (and its memory) by its size.
  if (grid.size() > kMaxVariants) {
    return r.Error("perturbations", fmt::format("makes a grid of {} variants; at most {}",
                                                grid.size(), kMaxVariants));
  }
  return grid;
}

Status CheckParaphrases(const Json& f, const ItemSource& where) {
  if (!f.contains("paraphrases")) return Status();
  if (!f["paraphrases"].is_array()) {
    return where.Error("paraphrases", "must be a list of non-empty strings");
  }
  for (const auto& p : f["paraphrases"]) {
    if (!p.is_string() || p.get<std::string>().empty()) {
      return where.Error("paraphrases", "must be a list of non-empty strings");
    }
  }
  return Status();
}

std::vector<Item> ExpandVariants(Item item, const std::vector<PresentationVariant>& variants) {
  std::vector<Item> out;
  if (variants.empty()) {
    out.push_back(std::move(item));
    return out;
  }
  const size_t paraphrases = item.fields.value("paraphrases", Json::array()).size();
  for (size_t v = 0; v < variants.size(); ++v) {
    const int paraphrase = variants[v].paraphrase;
    if (paraphrase > 0 && paraphrases < static_cast<size_t>(paraphrase)) continue;
    Item copy = item;
    copy.id = item.id + "~" + variants[v].name;
    copy.fields["variant"] = v;
    copy.fields["base"] = item.id;
    out.push_back(std::move(copy));
  }
  return out;
}

void PresentVariant(const PresentationVariant* v, Json& presentation) {
  if (v == nullptr) return;
  std::vector<int> own = presentation["order"].get<std::vector<int>>();
  presentation["order"] = VariantOrder(*v, static_cast<int>(own.size()), own);
  presentation["variant"] = v->name;
}

std::string WordingOf(const PresentationVariant* v, const Item& item, std::string own) {
  if (v == nullptr || v->paraphrase <= 0) return own;
  return item.fields["paraphrases"][static_cast<size_t>(v->paraphrase - 1)].get<std::string>();
}

std::vector<std::string> VariantNames(const std::vector<PresentationVariant>& variants) {
  std::vector<std::string> out;
  for (const auto& v : variants) out.push_back(v.name);
  return out;
}

const PresentationVariant* VariantOf(const std::vector<PresentationVariant>& variants,
                                     const Item& item) {
  if (variants.empty() || !item.fields.contains("variant")) return nullptr;
  const size_t v = item.fields["variant"].get<size_t>();
  return v < variants.size() ? &variants[v] : nullptr;
}

std::vector<int> VariantOrder(const PresentationVariant& v, int n,
                              const std::vector<int>& balanced) {
  std::vector<int> order(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) order[static_cast<size_t>(i)] = i;
  switch (v.order) {
    case PresentationVariant::Order::kBalanced:
      return balanced;
    case PresentationVariant::Order::kFile:
      return order;
    case PresentationVariant::Order::kReversed:
      for (int i = 0; i < n; ++i) order[static_cast<size_t>(i)] = n - 1 - i;
      return order;
    case PresentationVariant::Order::kRotate:
      for (int i = 0; i < n; ++i) order[static_cast<size_t>(i)] = (i + v.rotate) % n;
      return order;
  }
  return order;
}

}  // namespace plumb::suites
