// CSV reading (csv and pacifaist-csv items, replay files).
#include "fuzz.h"
#include "plumb/csv.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  (void)plumb::ParseCsv(plumb::fuzz::Input(data, size), "fuzz.csv", ',', '#');
  return 0;
}
