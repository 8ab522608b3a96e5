// Hashing and deterministic pseudo-random numbers (stable across platforms and compilers).
#ifndef PLUMB_HASH_H_
#define PLUMB_HASH_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace plumb {

// Lower-case hex SHA-256 of `data` (OpenSSL).
std::string Sha256Hex(std::string_view data);

// Incremental SHA-256, for hashing several files into one content hash.
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;
  void Update(std::string_view data);
  std::string HexDigest();  // finishes the hash

 private:
  void* ctx_;  // EVP_MD_CTX*, kept opaque so that OpenSSL headers stay out of this header
};

// splitmix64 step: a well-mixed 64-bit value from `x`.
uint64_t SplitMix64(uint64_t x);

// A stable 64-bit seed from a run seed, a string key (item id) and an integer (epoch, turn).
uint64_t DeriveSeed(uint64_t seed, std::string_view key, uint64_t n = 0);

// A small deterministic generator (splitmix64 sequence). std::uniform_int_distribution is not
// used because its output differs between standard libraries, and recorded seeds must
// reproduce the same option orders everywhere.
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t Next();
  // Uniform in [0, n) without modulo bias; n > 0.
  uint64_t Below(uint64_t n);
  // Uniform in [0, 1).
  double Uniform();
  // Fisher-Yates permutation of 0..n-1.
  std::vector<int> Permutation(int n);

 private:
  uint64_t state_;
};

}  // namespace plumb

#endif  // PLUMB_HASH_H_
