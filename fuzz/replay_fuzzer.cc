// The replay reader on a fuzzed stored-output file (JSONL, or CSV when the input starts with
// "id,"), then one answer from it.
#include "fuzz.h"
#include "plumb/backend.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static plumb::BackendRegistry registry("backend kind");
  static bool registered = [] {
    plumb::RegisterBuiltinBackends(registry);
    return true;
  }();
  (void)registered;
  std::string_view in = plumb::fuzz::Input(data, size);
  bool csv = in.substr(0, 3) == "id,";
  auto file = plumb::fuzz::Scratch() / (csv ? "out.csv" : "out.jsonl");
  plumb::fuzz::WriteFile(file, in);
  plumb::BackendContext ctx;
  ctx.spec = "replay/" + file.string();
  ctx.options = {{"epochs", size % 2 ? "file_order" : "column"}};
  auto backend = plumb::CreateBackend(registry, ctx);
  if (!backend) return 0;
  plumb::ModelCall call;
  call.hints.item_id = "q1";
  (*backend)->Submit(call, [](plumb::Result<plumb::Completion>, const plumb::CallReport&) {});
  return 0;
}
