// Suite discovery and loading: suite.yaml (common keys here, kind keys in the kind), item files
// through a format reader, the field mapping, and item validation.
#include <fmt/format.h>
#include <fnmatch.h>

#include <algorithm>
#include <deque>
#include <set>

#include "plumb/hash.h"
#include "plumb/suite.h"
#include "plumb/text.h"
#include "suites/formats.h"

namespace plumb {

std::string ItemSource::Name(const std::string& canonical) const {
  auto it = names.find(canonical);
  return it == names.end() ? canonical : it->second;
}

Status ItemSource::Error(const std::string& canonical, const std::string& what) const {
  // The field's own line where the format knows it (YAML), else the record's.
  std::string name = Name(canonical);
  return InvalidArgument(
      fmt::format("{}: field '{}' {}", source.Where("/" + JsonPointerEscape(name)), name, what));
}

std::vector<Sample> SuiteKind::PlanEpoch(const std::vector<Item>&,
                                         const std::vector<size_t>& selected, int epoch,
                                         uint64_t) const {
  std::vector<Sample> out;
  out.reserve(selected.size());
  for (size_t i : selected) out.push_back(Sample{i, epoch, Json::object()});
  return out;
}

std::vector<Sample> SuiteKind::Plan(const std::vector<Item>& items,
                                    const std::vector<size_t>& selected, int epochs,
                                    uint64_t seed) const {
  std::vector<Sample> out;
  for (int e = 0; e < epochs; ++e) {
    std::vector<Sample> epoch = PlanEpoch(items, selected, e, seed);
    out.insert(out.end(), std::make_move_iterator(epoch.begin()),
               std::make_move_iterator(epoch.end()));
  }
  return out;
}

namespace {

// The default accumulator: every outcome kept, in (epoch, item) order for Metrics().
class BufferedMetrics final : public MetricsAccumulator {
 public:
  BufferedMetrics(const SuiteKind& kind, const std::vector<Item>& items,
                  const MetricOptions& options)
      : kind_(kind), items_(items), options_(options) {}
  void Add(SampleOutcome outcome) override { outcomes_.push_back(std::move(outcome)); }
  std::vector<Metric> Finish() override {
    std::stable_sort(outcomes_.begin(), outcomes_.end(),
                     [&](const SampleOutcome& a, const SampleOutcome& b) {
                       if (a.epoch != b.epoch) return a.epoch < b.epoch;
                       return items_[a.item].id < items_[b.item].id;
                     });
    return kind_.Metrics(items_, outcomes_, options_);
  }

 private:
  const SuiteKind& kind_;
  const std::vector<Item>& items_;
  MetricOptions options_;
  std::vector<SampleOutcome> outcomes_;
};

}  // namespace

std::unique_ptr<MetricsAccumulator> SuiteKind::StartMetrics(const std::vector<Item>& items,
                                                            const MetricOptions& options) const {
  return std::make_unique<BufferedMetrics>(*this, items, options);
}

Result<std::vector<Item>> SuiteKind::Expand(Item item, const ItemSource&) const {
  std::vector<Item> out;
  out.push_back(std::move(item));
  return out;
}

Result<std::optional<Turn>> SuiteKind::NextTurn(const Item&, const Sample&,
                                                const std::vector<Exchange>&) const {
  return std::optional<Turn>();
}

namespace {

// [a-z0-9]+(-[a-z0-9]+)*
bool IsKebabId(const std::string& s) {
  if (s.empty() || s.front() == '-' || s.back() == '-') return false;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    bool ok = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || (c == '-' && s[i - 1] != '-');
    if (!ok) return false;
  }
  return true;
}

enum class Extra { kError, kIgnore, kMetadata };

struct Mapping {
  // canonical -> source keys or /pointers; several sources make a list (e.g. option columns)
  std::map<std::string, std::vector<std::string>> sources;
  std::map<std::string, std::string> names;  // canonical -> source name(s) for messages
  Extra extra = Extra::kError;
};

// Looks a source name up in a record: a top-level key, or a JSON pointer when it starts with /.
const Json* Lookup(const Json& obj, const std::string& name) {
  if (!name.empty() && name[0] == '/') {
    try {
      const Json& v = obj.at(Json::json_pointer(name));
      return &v;
    } catch (const Json::exception&) {
      return nullptr;
    }
  }
  auto it = obj.find(name);
  return it == obj.end() ? nullptr : &*it;
}

Result<Item> MapRecord(const suites::Record& rec, const Mapping& mapping,
                       const std::vector<std::string>& kind_fields) {
  Item item;
  ItemSource where{rec.source, mapping.names};
  std::set<std::string> used;
  std::deque<Json> assembled;  // values combined from several sources; stable addresses
  auto mark = [&](const std::string& name) {
    used.insert(name[0] == '/' ? name.substr(1, name.find('/', 1) - 1) : name);
  };
  auto take = [&](const std::string& canonical) -> const Json* {
    auto it = mapping.sources.find(canonical);
    if (it == mapping.sources.end()) {
      const Json* v = Lookup(rec.value, canonical);
      if (v != nullptr) mark(canonical);
      return v;
    }
    if (it->second.size() == 1) {
      const Json* v = Lookup(rec.value, it->second[0]);
      if (v != nullptr) mark(it->second[0]);
      return v;
    }
    Json list = Json::array();
    for (const auto& name : it->second) {
      const Json* v = Lookup(rec.value, name);
      if (v == nullptr) return nullptr;
      mark(name);
      list.push_back(*v);
    }
    assembled.push_back(std::move(list));
    return &assembled.back();
  };

  const Json* id = take("id");
  if (id == nullptr) return where.Error("id", "is required");
  if (id->is_number_integer()) {
    item.id = std::to_string(id->get<int64_t>());
  } else if (id->is_string() && !id->get<std::string>().empty()) {
    item.id = id->get<std::string>();
  } else {
    return where.Error("id", "must be a non-empty string or an integer");
  }
  if (const Json* c = take("category")) {
    if (!c->is_string()) return where.Error("category", "must be a string");
    item.category = c->get<std::string>();
  }
  item.metadata = Json::object();
  if (const Json* m = take("metadata")) {
    if (!m->is_object()) return where.Error("metadata", "must be an object");
    item.metadata = *m;
  }
  if (const Json* s = take("scored")) {
    if (!s->is_boolean()) return where.Error("scored", "must be true or false");
    item.scored = s->get<bool>();
  }
  if (const Json* n = take("samples")) {
    if (!n->is_number_integer() || n->get<int64_t>() < 1 || n->get<int64_t>() > 100000)
      return where.Error("samples", "must be a whole number from 1 to 100000");
    item.samples = n->get<int>();
  }
  item.fields = Json::object();
  for (const auto& f : kind_fields) {
    if (const Json* v = take(f)) item.fields[f] = *v;
  }
  for (const auto& [key, value] : rec.value.items()) {
    if (used.count(key)) continue;
    switch (mapping.extra) {
      case Extra::kError:
        return InvalidArgument(fmt::format(
            "{}: field '{}' is not a known item field (known: {}; map fields under 'fields:' in "
            "suite.yaml, or set 'extra_fields: metadata' or 'ignore')",
            where.Where(), QuoteInput(key, 80),
            Join(kind_fields, ", ") + ", id, category, metadata, scored, samples"));
      case Extra::kIgnore:
        break;
      case Extra::kMetadata:
        item.metadata[key] = value;
        break;
    }
  }
  return item;
}

Result<Mapping> ReadMapping(FieldReader& top, const std::vector<std::string>& kind_fields) {
  Mapping m;
  std::vector<std::string> canonical = {"id", "category", "metadata", "scored", "samples"};
  canonical.insert(canonical.end(), kind_fields.begin(), kind_fields.end());
  PLUMB_ASSIGN_OR_RETURN(auto fields, top.OptObject("fields"));
  if (fields) {
    for (const auto& [key, value] : fields->object().items()) {
      if (std::find(canonical.begin(), canonical.end(), key) == canonical.end()) {
        return fields->Error(key, fmt::format("is not an item field of this kind (known: {})",
                                              Join(canonical, ", ")));
      }
      const Json& v = fields->object()[key];
      std::vector<std::string> sources;
      if (v.is_string()) {
        sources.push_back(v.get<std::string>());
      } else {
        PLUMB_ASSIGN_OR_RETURN(auto list, fields->OptStringList(key));
        if (!list || list->size() < 2) {
          return fields->Error(key, "must name a field, or list two or more fields to combine");
        }
        sources = *list;
      }
      fields->Get(key);
      for (const auto& src : sources) {
        if (src.empty()) return fields->Error(key, "must not name an empty field");
      }
      m.names[key] = Join(sources, "+");
      m.sources[key] = std::move(sources);
    }
  }
  PLUMB_ASSIGN_OR_RETURN(auto extra, top.OptString("extra_fields"));
  if (extra) {
    if (*extra == "error")
      m.extra = Extra::kError;
    else if (*extra == "ignore")
      m.extra = Extra::kIgnore;
    else if (*extra == "metadata")
      m.extra = Extra::kMetadata;
    else
      return top.Error("extra_fields", "must be error, ignore or metadata");
  }
  return m;
}

}  // namespace

Result<std::vector<SuiteRef>> DiscoverSuites(const std::vector<std::filesystem::path>& dirs) {
  std::vector<SuiteRef> out;
  std::map<std::string, std::filesystem::path> seen;
  for (const auto& dir : dirs) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
      return NotFound(
          fmt::format("suites folder '{}' does not exist (see --suites-dir)", dir.string()));
    }
    std::vector<SuiteRef> here;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
      auto manifest = entry.path() / "suite.yaml";
      if (!entry.is_directory() || !std::filesystem::exists(manifest)) continue;
      here.push_back(SuiteRef{entry.path().filename().string(), manifest});
    }
    std::sort(here.begin(), here.end(), [](const auto& a, const auto& b) { return a.id < b.id; });
    for (auto& ref : here) {
      auto [it, inserted] = seen.emplace(ref.id, ref.manifest);
      if (!inserted) {
        return InvalidArgument(fmt::format("suite id '{}' is defined twice: {} and {}", ref.id,
                                           it->second.string(), ref.manifest.string()));
      }
      out.push_back(std::move(ref));
    }
  }
  return out;
}

Result<Suite> LoadSuite(const std::filesystem::path& manifest_path, const SuiteKindRegistry& kinds,
                        const GraderRegistry& graders, const JudgeLibrary* judges,
                        const Json* overlay) {
  PLUMB_ASSIGN_OR_RETURN(Document doc, LoadYamlFile(manifest_path));
  if (!doc.value.is_object()) {
    return InvalidArgument(
        fmt::format("{}: a suite manifest must be a mapping", manifest_path.string()));
  }
  if (overlay != nullptr) {
    for (const auto& [key, value] : overlay->items()) doc.value[key] = value;
  }
  FieldReader top(doc.value, doc.source);
  Suite suite;
  SuiteManifest& m = suite.manifest;
  m.file = manifest_path;
  std::filesystem::path dir = manifest_path.parent_path();

  PLUMB_ASSIGN_OR_RETURN(m.id, top.String("id"));
  if (!IsKebabId(m.id)) return top.Error("id", "must be kebab-case (a-z, 0-9 and '-')");
  std::string folder = dir.filename().string();
  if (m.id != folder) {
    return top.Error("id",
                     fmt::format("'{}' must equal the suite's folder name '{}'", m.id, folder));
  }
  PLUMB_ASSIGN_OR_RETURN(auto version, top.OptInt("version"));
  if (version && *version < 1) return top.Error("version", "must be 1 or more");
  m.version = static_cast<int>(version.value_or(1));
  PLUMB_ASSIGN_OR_RETURN(m.kind, top.String("kind"));
  PLUMB_ASSIGN_OR_RETURN(auto title, top.OptString("title"));
  m.title = title.value_or(m.id);
  PLUMB_ASSIGN_OR_RETURN(auto description, top.OptString("description"));
  m.description = description.value_or("");
  PLUMB_ASSIGN_OR_RETURN(auto samples, top.OptInt("samples"));
  if (samples && (*samples < 1 || *samples > 1000))
    return top.Error("samples", "must be between 1 and 1000");
  m.samples = static_cast<int>(samples.value_or(1));
  PLUMB_ASSIGN_OR_RETURN(auto item_samples, top.OptBool("item_samples"));
  m.item_samples = item_samples.value_or(false);
  // `select`: only the items whose id (or, for items a kind expands, the id in the file)
  // equals one of these or matches it as a glob pattern ("q-1*").
  PLUMB_ASSIGN_OR_RETURN(auto select, top.OptStringList("select"));
  if (select && select->empty()) return top.Error("select", "must name at least one item");
  std::vector<bool> select_used(select ? select->size() : 0, false);
  auto selected = [&](const std::string& id) {
    bool any = false;
    for (size_t k = 0; select && k < select->size(); ++k) {
      if (fnmatch((*select)[k].c_str(), id.c_str(), 0) == 0) any = select_used[k] = true;
    }
    return any;
  };
  PLUMB_ASSIGN_OR_RETURN(auto generation, top.OptObject("generation"));
  if (generation) {
    PLUMB_ASSIGN_OR_RETURN(m.generation, ReadGenerationParams(*generation));
  }

  // Data files: one name or a list, relative to the suite folder.
  std::vector<std::string> data_names;
  if (const Json* data = top.Get("data")) {
    if (data->is_string()) {
      data_names.push_back(data->get<std::string>());
    } else {
      PLUMB_ASSIGN_OR_RETURN(auto list, top.OptStringList("data"));
      data_names = *list;
    }
    if (data_names.empty()) return top.Error("data", "must name at least one file");
  } else {
    data_names.push_back("items.jsonl");
  }
  PLUMB_ASSIGN_OR_RETURN(auto format, top.OptString("format"));
  std::string format_name = format.value_or("jsonl");
  const suites::FormatEntry* reader = nullptr;
  std::vector<std::string> format_names;
  for (const auto& f : suites::Formats()) {
    format_names.push_back(f.name);
    if (format_name == f.name) reader = &f;
  }
  if (reader == nullptr) {
    return top.Error("format", fmt::format("'{}' is not a known format (known: {})", format_name,
                                           Join(format_names, ", ")));
  }

  if (!kinds.Contains(m.kind)) return top.Error("kind", kinds.UnknownMessage(m.kind));
  SuiteKindContext kctx{&top, dir, &graders, judges};
  PLUMB_ASSIGN_OR_RETURN(auto kind, kinds.Create(m.kind, kctx));
  if (top.Has("perturbations") && !top.WasRead("perturbations")) {
    return top.Error(
        "perturbations",
        fmt::format("(or --perturb) asks for a perturbation grid, which kind '{}' does "
                    "not offer: grids are for the choice-style kinds (choice, "
                    "paired_choice, opinion, contrast)",
                    m.kind));
  }
  std::vector<std::string> kind_fields = kind->ItemFields();
  PLUMB_ASSIGN_OR_RETURN(Mapping mapping, ReadMapping(top, kind_fields));

  // Format readers read their own settings from the manifest, so unknown keys are checked after
  // the first file is read.
  Sha256 hash;
  PLUMB_ASSIGN_OR_RETURN(std::string manifest_text, suites::ReadFileText(manifest_path));
  hash.Update(manifest_text);
  if (overlay != nullptr && !overlay->empty()) hash.Update("\n--overlay:" + DumpJson(*overlay));
  std::set<std::string> ids;
  size_t record_count = 0;
  for (size_t fi = 0; fi < data_names.size(); ++fi) {
    std::filesystem::path file = dir / data_names[fi];
    m.data_files.push_back(file);
    Result<std::string> read = suites::ReadFileText(file);
    if (!read && read.error().code() == StatusCode::kNotFound) {
      return Status(StatusCode::kNotFound,
                    top.Error("data", fmt::format("names '{}', which cannot be opened ({})",
                                                  data_names[fi], file.string()))
                        .message());
    }
    if (!read) return read.error();
    std::string bytes = std::move(*read);
    hash.Update(fmt::format("\n--{}:{}\n", data_names[fi], bytes.size()));
    hash.Update(bytes);
    PLUMB_ASSIGN_OR_RETURN(auto records, reader->read(suites::FormatContext{file, dir, &top}));
    if (fi == 0) PLUMB_RETURN_IF_ERROR(top.Finish());
    for (auto& rec : records) {
      PLUMB_ASSIGN_OR_RETURN(Item item, MapRecord(rec, mapping, kind_fields));
      ItemSource where{rec.source, mapping.names};
      item.line = rec.line;
      if (!ids.insert(item.id).second)
        return where.Error("id", fmt::format("'{}' is a duplicate", QuoteInput(item.id, 80)));
      PLUMB_RETURN_IF_ERROR(kind->CheckItem(item, where));
      const bool whole_record = !select || selected(item.id);
      PLUMB_ASSIGN_OR_RETURN(std::vector<Item> expanded, kind->Expand(std::move(item), where));
      bool kept = false;
      for (auto& e : expanded) {
        if (expanded.size() > 1 && !ids.insert(e.id).second) {
          return where.Error(
              "id", fmt::format("expands to '{}', which is a duplicate", QuoteInput(e.id, 80)));
        }
        if (!whole_record && !selected(e.id)) continue;
        // --limit counts the selected records, so an item's expansions stay together.
        e.record = record_count;
        suite.items.push_back(std::move(e));
        kept = true;
      }
      record_count += kept;
    }
  }
  for (size_t k = 0; k < select_used.size(); ++k) {
    if (!select_used[k]) {
      return InvalidArgument(fmt::format("{}: field 'select[{}]' ('{}') matches no item",
                                         top.Where("select"), k, QuoteInput((*select)[k], 80)));
    }
  }
  if (suite.items.empty()) {
    return InvalidArgument(fmt::format("{}: the suite has no items", manifest_path.string()));
  }
  m.content_hash = hash.HexDigest();
  suite.kind = std::move(kind);
  return suite;
}

}  // namespace plumb
