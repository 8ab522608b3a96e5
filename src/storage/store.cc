// What every store engine shares: conveniences built on the Store interface.
#include "plumb/store.h"

namespace plumb {

Result<int64_t> Store::CreateRun(const RunRecord& run, const std::vector<Item>& items,
                                 const std::vector<std::pair<std::string, int>>& samples,
                                 const std::vector<Json>& presentations) {
  PLUMB_ASSIGN_OR_RETURN(int64_t id, CreateRun(run, items));
  std::vector<PlannedSample> planned;
  planned.reserve(samples.size());
  for (size_t i = 0; i < samples.size(); ++i) {
    planned.push_back(PlannedSample{samples[i].first, samples[i].second,
                                    i < presentations.size() ? presentations[i] : Json::object()});
  }
  EnqueuePlanned(id, std::move(planned));
  PLUMB_RETURN_IF_ERROR(Flush());
  return id;
}

}  // namespace plumb
