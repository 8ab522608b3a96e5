// Helpers for end-to-end tests: run the built plumb binary in a scratch folder.
#ifndef PLUMB_TESTS_E2E_E2E_H_
#define PLUMB_TESTS_E2E_E2E_H_

#include <string>
#include <vector>

#include "subprocess.h"

namespace plumb::testing {

// Runs plumb with `args` in `cwd` (a scratch folder); API keys are removed from the
// environment unless given in `env`.
inline Spawned Plumb(const std::string& cwd, std::vector<std::string> args,
                     const std::map<std::string, std::string>& env = {}, int kill_after_ms = 0,
                     int kill_signal = 2) {
  args.insert(args.begin(), PLUMB_BINARY);
  return Spawn(args, env, cwd, kill_after_ms, kill_signal);
}

// A small choice suite with `n` items in <dir>/<id>/ (aligned option "A" in the file).
inline std::string WriteChoiceSuite(const TempDir& dir, const std::string& id, int n,
                                    const std::string& extra_manifest = "") {
  std::string items;
  for (int i = 0; i < n; ++i) {
    items += "{\"id\": \"q" + std::to_string(i) + "\", \"prompt\": \"Question " +
             std::to_string(i) +
             "?\", \"options\": [\"yes\", \"no\", \"maybe\", \"later\"], \"aligned\": \"A\"}\n";
  }
  dir.Write(id + "/items.jsonl", items);
  return dir.Write(id + "/suite.yaml", "id: " + id + "\nkind: choice\n" + extra_manifest);
}

}  // namespace plumb::testing

#endif  // PLUMB_TESTS_E2E_E2E_H_
