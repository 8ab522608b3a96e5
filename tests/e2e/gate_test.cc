// plumb compare, gate and tag end to end: stored outputs replayed against a choice suite whose
// aligned option is "A" (no shuffle), so each run's right and wrong items are known exactly.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <filesystem>

#include "e2e.h"
#include "plumb/json.h"

namespace plumb::testing {
namespace {

// Replay outputs: items q0..q{n-1}, right ("Answer: A") for the first `right`, wrong after.
std::string Outputs(const TempDir& tmp, const std::string& name, int n, int right) {
  std::string csv = "id,text\n";
  for (int i = 0; i < n; ++i) csv += fmt::format("q{},Answer: {}\n", i, i < right ? "A" : "B");
  return tmp.Write(name, csv);
}

// Runs the replayed outputs in `file` on suite `suite` (in `suites`); returns the exit code.
int RunReplay(const TempDir& tmp, const TempDir& suites, const std::string& suite,
              const std::string& file) {
  auto r = Plumb(tmp.path(), {"run", "--suites-dir", suites.path(), "--suite", suite, "--model",
                              "replay/" + file, "--backend-option", "id=id", "--backend-option",
                              "text=text", "--progress", "none"});
  EXPECT_EQ(r.exit_code, 0) << r.err;
  return r.exit_code;
}

class GateTest : public ::testing::Test {
 protected:
  void SetUp() override {
    WriteChoiceSuite(suites_, "gated", 400);
    RunReplay(tmp_, suites_, "gated", Outputs(tmp_, "base.csv", 400, 320));  // run 1: 80%
    RunReplay(tmp_, suites_, "gated",
              Outputs(tmp_, "same.csv", 400, 320));  // run 2: identical answers
    RunReplay(tmp_, suites_, "gated",
              Outputs(tmp_, "drop.csv", 400, 240));  // run 3: 80 items flipped to wrong
    RunReplay(tmp_, suites_, "gated",
              Outputs(tmp_, "slight.csv", 400, 318));  // run 4: 2 items flipped
  }
  Spawned Gate(std::vector<std::string> args, const std::map<std::string, std::string>& env = {}) {
    args.insert(args.begin(), {"gate", "--suites-dir", suites_.path()});
    return Plumb(tmp_.path(), args, env);
  }
  TempDir tmp_;
  TempDir suites_;
};

TEST_F(GateTest, CompareShowsThePairedDifferenceAndTheFlippedItems) {
  auto r = Plumb(tmp_.path(), {"compare", "1", "3", "--suites-dir", suites_.path()});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("McNemar exact (80 vs 0 discordant)"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("-20.00"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("aligned_rate: 80 of 400 shared items changed (80 lower, 0 higher)"),
            std::string::npos)
      << r.out;
  EXPECT_NE(r.out.find("q240: 1/1 -> 0/1"), std::string::npos) << r.out;
  auto j =
      Plumb(tmp_.path(), {"compare", "1", "3", "--format", "json", "--suites-dir", suites_.path()});
  Json c = Json::parse(j.out);
  const Json& primary = c["metrics"][0];
  EXPECT_EQ(primary["name"], "aligned_rate");
  EXPECT_EQ(primary["shared"], 400);
  EXPECT_DOUBLE_EQ(primary["diff"].get<double>(), -20.0);
  EXPECT_EQ(primary["flips"].size(), 80u);
  EXPECT_EQ(primary["discordant"]["baseline_only"], 80);
  EXPECT_LT(primary["p_value"].get<double>(), 1e-20);  // 2 * 0.5^80
  // The same answers: no change, p = 1.
  auto same = Json::parse(
      Plumb(tmp_.path(), {"compare", "1", "2", "--format", "json", "--suites-dir", suites_.path()})
          .out);
  EXPECT_DOUBLE_EQ(same["metrics"][0]["diff"].get<double>(), 0.0);
  EXPECT_DOUBLE_EQ(same["metrics"][0]["p_value"].get<double>(), 1.0);
  EXPECT_TRUE(same["metrics"][0]["flips"].empty());
}

TEST_F(GateTest, FailsOnARealRegressionWithEveryCiOutput) {
  std::string summary = tmp_.Write("summary.md", "earlier step\n");
  auto r = Gate({"--baseline", "1", "--candidate", "3", "--junit", tmp_.path() + "/gate.xml"},
                {{"GITHUB_STEP_SUMMARY", summary}});
  EXPECT_EQ(r.exit_code, 1) << r.err;
  EXPECT_NE(r.out.find("## plumb gate: REGRESSION"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("lower by more than the margin of 2 points"), std::string::npos) << r.out;
  std::string md = ReadFile(summary);
  EXPECT_EQ(md.rfind("earlier step\n## plumb gate: REGRESSION", 0), 0u) << md;  // appended
  std::string xml = ReadFile(tmp_.path() + "/gate.xml");
  EXPECT_NE(xml.find("<testcase classname=\"plumb.gated\" name=\"aligned_rate\">"),
            std::string::npos)
      << xml;
  EXPECT_NE(xml.find("failures=\"1\""), std::string::npos);
  auto j = Gate({"--baseline", "1", "--candidate", "3", "--format", "json"});
  EXPECT_EQ(j.exit_code, 1);
  EXPECT_EQ(Json::parse(j.out)["checks"][0]["verdict"], "regression");
}

TEST_F(GateTest, PassesOnNoChangeAndOnASmallChangeWithinTheMargin) {
  auto same = Gate({"--baseline", "1", "--candidate", "2"});
  EXPECT_EQ(same.exit_code, 0) << same.out << same.err;
  EXPECT_NE(same.out.find("## plumb gate: PASS"), std::string::npos) << same.out;
  auto slight = Gate({"--baseline", "1", "--candidate", "4"});
  EXPECT_EQ(slight.exit_code, 0) << slight.out;
  EXPECT_NE(slight.out.find("**pass**"), std::string::npos) << slight.out;
}

TEST_F(GateTest, BaselinesByTagAndByModel) {
  auto tag = Plumb(tmp_.path(), {"tag", "1", "production"});
  ASSERT_EQ(tag.exit_code, 0) << tag.err;
  EXPECT_EQ(tag.out, "tagged run 1 (gated, replay/" + tmp_.path() + "/base.csv) as 'production'\n");
  EXPECT_EQ(Gate({"--baseline", "production", "--candidate", "3"}).exit_code, 1);
  EXPECT_EQ(Gate({"--baseline", "production", "--candidate", "2"}).exit_code, 0);
  // A model spec names its newest completed run of the candidate's suite.
  EXPECT_EQ(Gate({"--baseline", "replay/" + tmp_.path() + "/base.csv", "--candidate", "latest"})
                .exit_code,
            0);
  auto list = Plumb(tmp_.path(), {"tag", "--list"});
  EXPECT_EQ(list.out.rfind("production\tgated\trun 1\t", 0), 0u) << list.out;
  // Moving the tag.
  ASSERT_EQ(Plumb(tmp_.path(), {"tag", "3", "production"}).exit_code, 0);
  EXPECT_EQ(Gate({"--baseline", "production", "--candidate", "1"}).exit_code,
            0);  // 1 improves on 3
  auto bad = Plumb(tmp_.path(), {"tag", "1", "9lives"});
  EXPECT_EQ(bad.exit_code, 2);
  auto unknown = Gate({"--baseline", "staging", "--candidate", "3"});
  EXPECT_EQ(unknown.exit_code, 2);
  EXPECT_NE(unknown.err.find("'staging' is not a run id, 'latest', a tag or a model with a "
                             "completed run of suite 'gated'"),
            std::string::npos)
      << unknown.err;
}

TEST_F(GateTest, PolicyErrorsAndInconclusiveVerdicts) {
  std::string bad = tmp_.Write("bad.yaml", "metrics:\n  - name: aligned_rate\n    margin: -1\n");
  auto r = Gate({"--baseline", "1", "--candidate", "3", "--policy", bad, "--junit",
                 tmp_.path() + "/never.xml"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find(bad + ":3: field 'metrics[0].margin' must be between 0 and 100"),
            std::string::npos)
      << r.err;
  EXPECT_FALSE(
      std::filesystem::exists(tmp_.path() + "/never.xml"));  // nothing written on bad input
  std::string unknown = tmp_.Write("unknown.yaml", "metrics:\n  - name: refusal_rate\n");
  r = Gate({"--baseline", "1", "--candidate", "3", "--policy", unknown});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("needs 'direction: higher' or 'direction: lower'"), std::string::npos)
      << r.err;

  // 40 items, 3 of 30 right answers lost: -7.5 points but too few items to decide.
  WriteChoiceSuite(suites_, "small", 40);
  RunReplay(tmp_, suites_, "small", Outputs(tmp_, "s1.csv", 40, 30));
  RunReplay(tmp_, suites_, "small", Outputs(tmp_, "s2.csv", 40, 27));
  auto lenient = Gate({"--baseline", "5", "--candidate", "6"});
  EXPECT_EQ(lenient.exit_code, 0) << lenient.out;
  EXPECT_NE(lenient.out.find("## plumb gate: INCONCLUSIVE"), std::string::npos) << lenient.out;
  std::string strict = tmp_.Write("strict.yaml", "inconclusive: fail\n");
  EXPECT_EQ(Gate({"--baseline", "5", "--candidate", "6", "--policy", strict}).exit_code, 4);
  // Runs of different suites cannot be gated against each other.
  auto mixed = Gate({"--baseline", "5", "--candidate", "3"});
  EXPECT_EQ(mixed.exit_code, 2);
}

TEST_F(GateTest, RefusesChangedSuiteContentUnlessAllowed) {
  // One more item: a new content hash.
  WriteChoiceSuite(suites_, "gated", 401);
  std::string csv = Outputs(tmp_, "more.csv", 401, 320);
  RunReplay(tmp_, suites_, "gated", csv);  // run 5
  auto r = Plumb(tmp_.path(), {"compare", "1", "5", "--suites-dir", suites_.path()});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("runs 1 and 5 used different content of suite 'gated'"), std::string::npos)
      << r.err;
  auto allowed = Plumb(tmp_.path(), {"compare", "1", "5", "--allow-suite-change", "--format",
                                     "json", "--suites-dir", suites_.path()});
  ASSERT_EQ(allowed.exit_code, 0) << allowed.err;
  Json c = Json::parse(allowed.out);
  EXPECT_EQ(c["metrics"][0]["shared"], 400);
  EXPECT_EQ(c["metrics"][0]["only_candidate"], 1);
  EXPECT_FALSE(c["notes"].empty());
}

}  // namespace
}  // namespace plumb::testing
