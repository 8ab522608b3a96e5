// YAML reading with line numbers (suite.yaml, grader.yaml, plumb.yaml, policies, em-yaml):
// never a crash, bounded expansion of aliases.
#include "fuzz.h"
#include "plumb/json.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  auto doc = plumb::ParseYaml(std::string(plumb::fuzz::Input(data, size)), "fuzz.yaml");
  if (doc) {
    (void)plumb::DumpJson(doc->value);
    plumb::FieldReader r(doc->value, doc->source);
    (void)r.OptString("id");
    (void)r.OptStringList("labels");
    (void)r.Finish();
  }
  return 0;
}
