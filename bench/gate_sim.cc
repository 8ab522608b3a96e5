// make bench: is plumb gate sound? Simulates paired runs under no change and under real drops,
// at realistic suite sizes, and runs them through the gate's own code (ProportionMetric /
// BootstrapMetric -> ComparePaired -> EvaluateGate). Prints, per scenario, how often the gate
// says regression, pass and inconclusive. Exits 1 when the false-alarm rate under no change, or
// at a true drop exactly equal to the margin, is above the nominal 5% by more than Monte Carlo
// error (3 standard errors).
//
// Item model: item i has a probability q_i that a model answers it well, q_i ~ Beta(1.4, 0.6)
// (mean 0.7, many items nearly always or nearly never right, as in real suites). The baseline's
// outcome is Bernoulli(q_i); the candidate's is Bernoulli(q_i * (0.7 - drop) / 0.7), so the
// mean drops by exactly `drop` and paired outcomes are as correlated as two sampled runs of
// similar models are. "binary-t0" is the low-noise case of greedy decoding: the candidate
// repeats the baseline's outcome on 90% of items and draws afresh on the rest, then loses a
// success with probability drop / 70 (again an exact mean drop). Continuous scores (judge-style,
// 0-100): baseline 100 * q_i + N(0, 15), candidate the same with q_i scaled, clipped to [0, 100].
#include <fmt/format.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "plumb/compare.h"

namespace plumb {
namespace {

enum class Scores { kBinary, kBinaryT0, kContinuous };

struct Scenario {
  Scores scores = Scores::kBinary;
  int n = 0;
  double drop = 0;    // points
  double margin = 2;  // points
};

struct Tally {
  int regression = 0, pass = 0, inconclusive = 0;
};

Metric Mean(const std::vector<std::string>& keys, std::vector<double> v, const MetricOptions& o) {
  return BootstrapMetric(
      "score", "", keys,
      [v](const std::vector<int>& c) -> std::optional<double> {
        double s = 0, n = 0;
        for (size_t i = 0; i < v.size(); ++i) s += c[i] * v[i], n += c[i];
        if (n == 0) return std::nullopt;
        return s / n;
      },
      o);
}

Tally Simulate(const Scenario& s, int replications, int resamples, uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::gamma_distribution<double> ga(1.4, 1.0), gb(0.6, 1.0);
  std::normal_distribution<double> noise(0, 15);
  std::uniform_real_distribution<double> u(0, 1);
  std::vector<std::string> keys;
  for (int i = 0; i < s.n; ++i) keys.push_back(fmt::format("item-{}", i));
  GatePolicy policy;
  policy.metrics = {GateMetricPolicy{"score", "", "", true, s.margin, "simulation"}};
  Tally t;
  double scale = (0.7 - s.drop / 100) / 0.7;
  for (int r = 0; r < replications; ++r) {
    MetricOptions options{seed + static_cast<uint64_t>(r), 0};  // no per-run intervals needed
    std::vector<Cluster> a, b;
    std::vector<double> sa, sb;
    for (int i = 0; i < s.n; ++i) {
      double x = ga(rng), y = gb(rng);
      double q = x / (x + y);
      if (s.scores == Scores::kBinary) {
        a.push_back(Cluster{u(rng) < q, 1, keys[i]});
        b.push_back(Cluster{u(rng) < q * scale, 1, keys[i]});
      } else if (s.scores == Scores::kBinaryT0) {
        bool first = u(rng) < q;
        bool second = u(rng) < 0.9 ? first : u(rng) < q;
        if (second && u(rng) < s.drop / 70) second = false;
        a.push_back(Cluster{first, 1, keys[i]});
        b.push_back(Cluster{second, 1, keys[i]});
      } else {
        sa.push_back(std::clamp(100 * q + noise(rng), 0.0, 100.0));
        sb.push_back(std::clamp(100 * q * scale + noise(rng), 0.0, 100.0));
      }
    }
    RunComparison c;
    c.a.id = 1;
    c.b.id = 2;
    c.b.suite_id = "sim";
    c.b.primary_metric = "score";
    MetricComparison m;
    m.name = "score";
    bool binary = s.scores != Scores::kContinuous;
    m.a = binary ? ProportionMetric("score", "", a, options) : Mean(keys, sa, options);
    m.b = binary ? ProportionMetric("score", "", b, options) : Mean(keys, sb, options);
    m.paired = ComparePaired(*m.a.model, *m.b.model,
                             MetricOptions{seed ^ static_cast<uint64_t>(r), resamples});
    c.metrics.push_back(std::move(m));
    auto result = EvaluateGate({c}, policy);
    const std::string& v = result->checks.front().verdict;
    (v == "regression" ? t.regression : v == "pass" ? t.pass : t.inconclusive)++;
  }
  return t;
}

}  // namespace
}  // namespace plumb

int main(int argc, char** argv) {
  using namespace plumb;
  int replications = 1000, resamples = 1000;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i];
    if (flag == "--replications")
      replications = std::atoi(argv[i + 1]);
    else if (flag == "--resamples")
      resamples = std::atoi(argv[i + 1]);
    else {
      std::fprintf(stderr, "usage: gate_sim [--replications N] [--resamples B]\n");
      return 2;
    }
  }
  std::vector<Scenario> scenarios;
  for (Scores scores : {Scores::kBinary, Scores::kBinaryT0, Scores::kContinuous}) {
    for (int n : {150, 350, 700}) {
      for (double drop : {0.0, 2.0, 5.0, 10.0}) scenarios.push_back(Scenario{scores, n, drop, 2});
      if (scores == Scores::kBinary) {
        for (double drop : {0.0, 5.0, 10.0}) scenarios.push_back(Scenario{scores, n, drop, 0});
      }
    }
  }
  fmt::print("gate simulation: {} replications per row, {} bootstrap resamples, alpha 0.05\n\n",
             replications, resamples);
  fmt::print("{:<11} {:>6} {:>5} {:>6}  {:>11} {:>8} {:>13}  {}\n", "scores", "margin", "n", "drop",
             "regression%", "pass%", "inconclusive%", "");
  bool sound = true;
  double slack = 3 * std::sqrt(0.05 * 0.95 / replications);  // Monte Carlo error allowance
  uint64_t seed = 20261126;
  for (const auto& s : scenarios) {
    Tally t = Simulate(s, replications, resamples, seed++);
    double reg = 100.0 * t.regression / replications;
    std::string note;
    if (s.drop <= s.margin) {
      bool ok = reg / 100 <= 0.05 + slack;
      sound = sound && ok;
      note = s.drop == 0 ? "false alarm (no change)" : "false alarm (drop = margin)";
      note += ok ? "" : "  ABOVE 5%";
    } else {
      note = "power";
    }
    fmt::print("{:<11} {:>6g} {:>5} {:>6g}  {:>11.1f} {:>8.1f} {:>13.1f}  {}\n",
               s.scores == Scores::kBinary     ? "binary"
               : s.scores == Scores::kBinaryT0 ? "binary-t0"
                                               : "continuous",
               s.margin, s.n, s.drop, reg, 100.0 * t.pass / replications,
               100.0 * t.inconclusive / replications, note);
  }
  fmt::print("\n{}\n", sound ? "false-alarm rates within the nominal 5% (plus Monte Carlo error)"
                             : "FAIL: a false-alarm rate is above the nominal 5%");
  return sound ? 0 : 1;
}
