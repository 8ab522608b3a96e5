// format: managerbench-json, the ManagerBench scenario files as published (Simhi et al. 2025):
// each file is a JSON array of [scenario, options_text, "Domain_HarmType_Incentive"]; files
// ending in the control suffix (default "_f.json") are the control set. The benchmark's filter
// drops harm-set scenarios of low-harm types and domains; an optional swap table gives the
// upstream A/B order per scenario and push mode, so answers can be compared item by item.
#include <fmt/format.h>

#include <map>
#include <set>

#include "suites/formats.h"

namespace plumb::suites {
namespace {

// The published filter (facts from the paper's code).
const std::vector<std::string> kExcludedHarmTypes = {"Loneliness or isolation", "Loss of job",
                                                     "Identity theft or financial fraud"};
const std::vector<std::string> kExcludedDomains = {
    "Manufacturing and Industry", "Healthcare", "Legal and Justice Systems", "Finance and Banking",
    "Artificial Intelligence (AI)"};

struct Settings {
  std::string control_suffix = "_f.json";
  std::set<std::string> excluded_harm_types{kExcludedHarmTypes.begin(), kExcludedHarmTypes.end()};
  std::set<std::string> excluded_domains{kExcludedDomains.begin(), kExcludedDomains.end()};
  // (file name, index in file, "push"/"no_push") -> swapped
  std::optional<std::map<std::tuple<std::string, int, std::string>, bool>> swaps;
};

Result<Settings> ReadSettings(const FormatContext& ctx) {
  Settings s;
  PLUMB_ASSIGN_OR_RETURN(auto r, ctx.manifest->OptObject("managerbench"));
  if (!r) return s;
  PLUMB_ASSIGN_OR_RETURN(auto suffix, r->OptString("control_suffix"));
  if (suffix) s.control_suffix = *suffix;
  PLUMB_ASSIGN_OR_RETURN(auto types, r->OptStringList("exclude_harm_types"));
  if (types) s.excluded_harm_types = {types->begin(), types->end()};
  PLUMB_ASSIGN_OR_RETURN(auto domains, r->OptStringList("exclude_domains"));
  if (domains) s.excluded_domains = {domains->begin(), domains->end()};
  PLUMB_ASSIGN_OR_RETURN(auto table, r->OptString("swap_table"));
  PLUMB_RETURN_IF_ERROR(r->Finish());
  if (table) {
    PLUMB_ASSIGN_OR_RETURN(auto rows, CsvRecords(ctx.dir / *table));
    s.swaps.emplace();
    for (const auto& row : rows) {
      const Json& v = row.value;
      for (const char* col : {"file", "index_in_file", "push", "switched"}) {
        if (!v.contains(col)) {
          return InvalidArgument(
              fmt::format("{}: missing column '{}'", (ctx.dir / *table).string(), col));
        }
      }
      int index = 0;
      try {
        index = std::stoi(v["index_in_file"].get<std::string>());
      } catch (const std::exception&) {
        return InvalidArgument(fmt::format("{}:{}: field 'index_in_file' must be a number",
                                           (ctx.dir / *table).string(), row.line));
      }
      (*s.swaps)[{v["file"].get<std::string>(), index, v["push"].get<std::string>()}] =
          v["switched"].get<std::string>() == "1";
    }
  }
  return s;
}

bool EndsWith(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() &&
         s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

}  // namespace

Result<std::vector<Record>> ReadManagerbenchJson(const FormatContext& ctx) {
  PLUMB_ASSIGN_OR_RETURN(Settings settings, ReadSettings(ctx));
  PLUMB_ASSIGN_OR_RETURN(std::string text, ReadFileText(ctx.file));
  const std::string file = ctx.file.string();
  const std::string name = ctx.file.filename().string();
  PLUMB_ASSIGN_OR_RETURN(Json data, ParseJsonStrict(text, file));
  if (!data.is_array()) return InvalidArgument(file + ": expected a JSON array of scenarios");
  const bool control = EndsWith(name, settings.control_suffix);
  std::string stem = ctx.file.stem().string();
  std::vector<Record> out;
  for (size_t i = 0; i < data.size(); ++i) {
    const Json& e = data[i];
    std::string where = fmt::format("{}[{}]", file, i);
    if (!e.is_array() || e.size() != 3 || !e[0].is_string() || !e[1].is_string() ||
        !e[2].is_string()) {
      return InvalidArgument(where +
                             ": expected [scenario, options, \"Domain_HarmType_Incentive\"]");
    }
    std::string meta = e[2].get<std::string>();
    size_t a = meta.find('_'), b = a == std::string::npos ? a : meta.find('_', a + 1);
    if (b == std::string::npos) {
      return InvalidArgument(where + ": the third field must look like Domain_HarmType_Incentive");
    }
    std::string domain = meta.substr(0, a), harm = meta.substr(a + 1, b - a - 1);
    if (!control &&
        (settings.excluded_harm_types.count(harm) || settings.excluded_domains.count(domain))) {
      continue;
    }
    Json item = {{"id", fmt::format("{}-{}", stem, i)},
                 {"category", domain},
                 {"set", control ? "control" : "harm"},
                 {"scenario", e[0]},
                 {"options_text", e[1]},
                 {"metadata",
                  {{"meta", meta},
                   {"domain", domain},
                   {"harm_type", harm},
                   {"incentive", meta.substr(b + 1)},
                   {"file", name},
                   {"index", i}}}};
    if (settings.swaps) {
      Json swap = Json::object();
      for (const char* mode : {"no_push", "push"}) {
        auto it = settings.swaps->find({name, static_cast<int>(i), mode});
        if (it == settings.swaps->end()) {
          return InvalidArgument(fmt::format("{}: the swap table has no row for {} index {} ({})",
                                             where, name, i, mode));
        }
        swap[mode] = it->second;
      }
      item["swap"] = swap;
    }
    out.push_back(Record{std::move(item), SourceMap(where, 0), 0});
  }
  return out;
}

}  // namespace plumb::suites
