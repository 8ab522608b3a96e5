// Strict JSON reading (items, replay files, judge verdicts, API bodies): never a crash, and
// what parses serialises again.
#include "fuzz.h"
#include "plumb/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto v = plumb::ParseJsonStrict(plumb::fuzz::Input(data, size), "fuzz.json");
  if (v) (void)plumb::DumpJson(*v);
  return 0;
}
