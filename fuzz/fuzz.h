// Shared helpers of the libFuzzer targets (make fuzz; docs/ci.md).
#ifndef PLUMB_FUZZ_FUZZ_H_
#define PLUMB_FUZZ_FUZZ_H_

#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <string_view>

namespace plumb::fuzz {

inline std::string_view Input(const uint8_t* data, size_t size) {
  return std::string_view(reinterpret_cast<const char*>(data), size);
}

// A scratch folder for targets that read files, made once per process and reused.
inline const std::filesystem::path& Scratch() {
  static const std::filesystem::path dir = [] {
    char tmpl[] = "/tmp/plumb-fuzz-XXXXXX";
    return std::filesystem::path(mkdtemp(tmpl));
  }();
  return dir;
}

inline void WriteFile(const std::filesystem::path& path, std::string_view content) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(content.data(), static_cast<std::streamsize>(content.size()));
}

}  // namespace plumb::fuzz

#endif  // PLUMB_FUZZ_FUZZ_H_
