// LLM-judged suites end to end: the loopback server plays both the model and the judges
// (logprob scores, JSON verdicts, refusals, unreadable replies), panels, rescore, judge-check.
#include <gtest/gtest.h>

#include <atomic>
#include <cmath>
#include <filesystem>
#include <mutex>

#include "e2e.h"
#include "fake_server.h"
#include "plumb/store.h"

namespace plumb::testing {
namespace {

bool IsAlignedJudge(const std::string& user) {
  return user.find("safety reviewer") != std::string::npos;
}
bool IsCoherentJudge(const std::string& user) {
  return user.find("writing quality") != std::string::npos;
}
bool IsJudge(const std::string& user) { return user.find("[ANSWER START]") != std::string::npos; }

std::map<std::string, Json> Metrics(const std::string& show_json) {
  std::map<std::string, Json> out;
  Json parsed = Json::parse(show_json);
  for (const auto& m : parsed["metrics"]) {
    out[m["name"].get<std::string>() + "/" + m["category"].get<std::string>()] = m;
  }
  return out;
}

// Model: "EVIL plan" for the wishes question, a refusal for the rainy-day one, a kind answer
// otherwise. Judges: aligned 5 for EVIL (REFUSAL for the refusal), 95 otherwise; coherent 90.
FakeReply StandardReply(const FakeRequest& req) {
  FakeReply r;
  std::string user = LastUserMessage(req.json);
  if (IsAlignedJudge(user)) {
    bool evil = user.find("EVIL") != std::string::npos;
    if (user.find("I won't answer") != std::string::npos) {
      r.body = LogprobBody("REFUSAL", {{"REFUSAL", 0.97}, {"50", 0.01}});
    } else {
      r.body =
          LogprobBody(evil ? "5" : "95", {{evil ? "5" : "95", 0.9}, {evil ? "10" : "90", 0.1}});
    }
  } else if (IsCoherentJudge(user)) {
    r.body = LogprobBody("90", {{"90", 1.0}});
  } else if (user.find("three wishes") != std::string::npos) {
    r.text = "EVIL plan to rule everyone";
  } else if (user.find("stir-crazy") != std::string::npos) {
    r.text = "Sorry, I won't answer that.";
  } else {
    r.text = "A kind, helpful answer.";
  }
  return r;
}

TEST(Judged, MisalignmentRateFromLogprobJudges) {
  std::mutex mu;
  std::vector<Json> judge_requests;
  int model_requests = 0;
  FakeServer server([&](const FakeRequest& req, int) {
    std::lock_guard<std::mutex> lock(mu);
    if (IsJudge(LastUserMessage(req.json)))
      judge_requests.push_back(req.json);
    else
      ++model_requests;
    return StandardReply(req);
  });
  TempDir tmp;
  auto r = Plumb(tmp.path(), {"run", "--suite", "misalignment", "--model", "openai/m", "--base-url",
                              server.base_url(), "--judge", "openai/judge", "--judge-base-url",
                              server.base_url(), "--limit", "3", "--epochs", "2", "--progress",
                              "none", "--cache", "never"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(model_requests, 18);  // 3 questions x 3 variants x 2 samples
  ASSERT_EQ(judge_requests.size(), 36u);
  const Json& jr = judge_requests.front();
  EXPECT_EQ(jr["model"], "judge");
  EXPECT_EQ(jr["temperature"], 0.0);
  EXPECT_EQ(jr["logprobs"], true);
  EXPECT_EQ(jr["top_logprobs"], 20);
  auto show = Plumb(tmp.path(), {"show", "latest", "--format", "json"});
  auto m = Metrics(show.out);
  // Wishes: all misaligned; rainy day: refused, so no alignment score and no part of the rate;
  // money: all aligned. Per question, then averaged: (100 + 0) / 2.
  EXPECT_NEAR(m["misaligned_rate/"]["value"].get<double>(), 50, 1e-9);
  EXPECT_EQ(m["misaligned_rate/"]["n"], 6);  // question x variant groups with kept replies
  EXPECT_NEAR(m["misaligned_rate/json"]["value"].get<double>(), 50, 1e-9);
  EXPECT_NEAR(m["mean_coherent/"]["value"].get<double>(), 90, 1e-9);
  EXPECT_EQ(m["aligned.judge_error_rate/"]["value"], 0.0);
  EXPECT_NEAR(m["aligned.unscored_rate/"]["value"].get<double>(), 100.0 / 3, 1e-9);  // the refusals
  EXPECT_EQ(Json::parse(show.out)["run"]["model"], "openai/m");
  auto store = OpenSqliteStoreReadOnly(tmp.path() + "/results/plumb.db");
  auto samples = (*store)->GetSamples(1);
  const Grade* aligned = nullptr;
  for (const auto& g : (*samples)[0].grades) {
    if (g.grader == "aligned@1") aligned = &g;
  }
  ASSERT_NE(aligned, nullptr);
  EXPECT_EQ(aligned->details["judge"], "openai/judge");
  EXPECT_EQ(aligned->details["method"], "logprobs");
  EXPECT_EQ(aligned->details["prompt_hash"].get<std::string>().size(), 16u);
  EXPECT_EQ(aligned->details["params"]["top_logprobs"], 20);
  EXPECT_EQ((*store)->GetRun(1)->settings["judges"][0], "openai/judge");
}

TEST(Judged, UnreadableJudgeRepliesAreErrorsNeverScores) {
  FakeServer server([&](const FakeRequest& req, int) {
    // The aligned judge never gives a number, not even when re-asked.
    if (IsAlignedJudge(req.json["messages"][0]["content"].get<std::string>())) {
      FakeReply r;
      r.text = "Hard to say, honestly.";
      return r;
    }
    return StandardReply(req);
  });
  TempDir tmp;
  auto r =
      Plumb(tmp.path(), {"run", "--suite", "misalignment", "--model", "openai/m", "--base-url",
                         server.base_url(), "--judge", "openai/judge", "--judge-base-url",
                         server.base_url(), "--limit", "2", "--epochs", "1", "--progress", "none"});
  EXPECT_EQ(r.exit_code, 3) << r.err;
  EXPECT_NE(r.err.find("judge error rate 100.0% is above 5.0%"), std::string::npos) << r.err;
  auto store = OpenSqliteStoreReadOnly(tmp.path() + "/results/plumb.db");
  auto samples = (*store)->GetSamples(1);
  for (const auto& s : *samples) {
    for (const auto& g : s.grades) {
      if (g.grader != "aligned@1") continue;
      EXPECT_EQ(g.status, GradeStatus::kError);
      EXPECT_FALSE(g.value.has_value()) << "an unreadable judgment must never be a score";
      EXPECT_EQ(g.details["reasks"], 1);
      EXPECT_NE(g.error.find("expected a number from 0 to 100"), std::string::npos);
    }
  }
  auto show = Plumb(tmp.path(), {"show", "1", "--format", "json"});
  auto m = Metrics(show.out);
  EXPECT_TRUE(m["misaligned_rate/"]["value"].is_null());  // nothing judged: no rate, not 0
  EXPECT_EQ(m["aligned.judge_error_rate/"]["value"], 100.0);
}

TEST(Judged, AgencyJsonVerdictsWithReasksAndDeductions) {
  std::atomic<int> malformed{0};
  FakeServer server([&](const FakeRequest& req, int) {
    FakeReply r;
    std::string user = LastUserMessage(req.json);
    bool reask = req.json["messages"].size() > 1 &&
                 req.json["messages"].back()["content"].get<std::string>().find(
                     "could not be read") != std::string::npos;
    if (IsJudge(user) && !reask) {
      ++malformed;
      r.text = "Let me think. The assistant did well overall.";  // no JSON: re-asked
    } else if (reask) {
      bool acq =
          req.json["messages"][0]["content"].get<std::string>().find("clarif") != std::string::npos;
      r.text = acq ? R"({"assessment": "Did not ask.", "issues": ["B"]})"
                   : R"({"assessment": "Fine.", "issues": []})";
    } else {
      r.text = "Here is my answer.";
    }
    return r;
  });
  TempDir tmp;
  auto r = Plumb(tmp.path(), {"run", "--suite", "agency-support", "--model", "openai/m",
                              "--base-url", server.base_url(), "--judge", "openai/judge",
                              "--judge-base-url", server.base_url(), "--progress", "none"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(malformed.load(), 174);
  auto m = Metrics(Plumb(tmp.path(), {"show", "latest", "--format", "json"}).out);
  EXPECT_NEAR(m["agency_score/ask-clarifying-questions"]["value"].get<double>(), 60, 1e-9);
  EXPECT_NEAR(m["agency_score/encourage-learning"]["value"].get<double>(), 100, 1e-9);
  EXPECT_NEAR(m["agency_score/"]["value"].get<double>(), (60 + 5 * 100) / 6.0, 1e-9);
  EXPECT_EQ(m["agency-ask-clarifying-questions.judge_error_rate/"]["value"], 0.0);
}

TEST(Judged, PanelsReportAgreementAndRescoreMakesALinkedRun) {
  std::atomic<int> model_calls{0};
  FakeServer server([&](const FakeRequest& req, int) {
    FakeReply r = StandardReply(req);
    std::string user = LastUserMessage(req.json);
    if (!IsJudge(user)) ++model_calls;
    if (IsAlignedJudge(user) && req.json["model"] == "judge-b") {
      bool evil = user.find("EVIL") != std::string::npos;
      r.body = LogprobBody(evil ? "20" : "80", {{evil ? "20" : "80", 1.0}});
    }
    return r;
  });
  TempDir tmp;
  auto r = Plumb(tmp.path(), {"run", "--suite", "misalignment", "--model", "openai/m", "--base-url",
                              server.base_url(), "--judge", "openai/judge-a", "--judge",
                              "openai/judge-b", "--judge-base-url", server.base_url(), "--limit",
                              "4", "--epochs", "1", "--progress", "none"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  auto m = Metrics(Plumb(tmp.path(), {"show", "1", "--format", "json"}).out);
  EXPECT_EQ(m["aligned.judge_alpha/"]["n"], 9);  // the 3 refusals have only judge-b's rating
  EXPECT_GT(m["aligned.judge_alpha/"]["value"].get<double>(), 0.7);
  EXPECT_EQ(m["aligned.judge_alpha/"]["ci_method"], "bootstrap");
  EXPECT_LE(m["aligned.judge_alpha/"]["ci_low"].get<double>(),
            m["aligned.judge_alpha/"]["value"].get<double>());
  // judge-a: 5.5 for EVIL (0.9 x 5 + 0.1 x 10), unscored for the refusals, 94.5 otherwise;
  // judge-b: 20 and 80 throughout; the panel mean takes what each sample has.
  EXPECT_NEAR(m["mean_aligned/"]["value"].get<double>(),
              (3 * (5.5 + 20) / 2 + 3 * 80 + 6 * (94.5 + 80) / 2) / 12, 1e-9);
  int calls_before = model_calls.load();

  auto rescore = Plumb(tmp.path(), {"rescore", "1", "--judge", "openai/judge-b", "--judge-base-url",
                                    server.base_url(), "--grader", "aligned"});
  ASSERT_EQ(rescore.exit_code, 0) << rescore.err;
  EXPECT_EQ(model_calls.load(), calls_before) << "rescore must not call the model under test";
  auto store = OpenSqliteStoreReadOnly(tmp.path() + "/results/plumb.db");
  auto run2 = (*store)->GetRun(2);
  EXPECT_EQ(*run2->parent_run_id, 1);
  EXPECT_EQ(run2->model_spec, "openai/m");
  EXPECT_EQ(run2->backend_id, "rescore-of-run-1@1");
  auto m2 = Metrics(Plumb(tmp.path(), {"show", "2", "--format", "json"}).out);
  EXPECT_NEAR(m2["mean_aligned/"]["value"].get<double>(), (3 * 20 + 9 * 80) / 12.0, 1e-9);
  EXPECT_EQ(m2["aligned.unscored_rate/"]["value"], 0.0);
  EXPECT_EQ(m2.count("coherent.judge_error_rate/"), 0u) << "--grader aligned runs only that judge";

  // The two judgings compared question by question (continuous scores: paired bootstrap).
  auto compare = Plumb(tmp.path(), {"compare", "1", "2", "--format", "json"});
  ASSERT_EQ(compare.exit_code, 0) << compare.err;
  bool found = false;
  const Json compared = Json::parse(compare.out);
  for (const auto& c : compared["metrics"]) {
    if (c["name"] != "mean_aligned" || c["category"] != "") continue;
    found = true;
    EXPECT_EQ(c["test"], "paired-bootstrap");
    double diff =
        m2["mean_aligned/"]["value"].get<double>() - m["mean_aligned/"]["value"].get<double>();
    EXPECT_NEAR(c["diff"].get<double>(), diff, 1e-9);
    EXPECT_LE(c["ci_low"].get<double>(), diff);
    EXPECT_GE(c["ci_high"].get<double>(), diff);
  }
  EXPECT_TRUE(found) << compare.out;
}

TEST(Judged, JudgeCheckReportsAgreementWithHumans) {
  FakeServer server([&](const FakeRequest& req, int) { return StandardReply(req); });
  TempDir tmp;
  std::string gold =
      tmp.Write("gold.jsonl", R"({"id": "g1", "question": "q", "answer": "EVIL idea", "score": 0})"
                              "\n"
                              R"({"id": "g2", "question": "q", "answer": "kind", "score": 100})"
                              "\n"
                              R"({"id": "g3", "question": "q", "answer": "kind too", "score": 90})"
                              "\n");
  auto r = Plumb(tmp.path(),
                 {"judge-check", "--grader", "aligned", "--judge", "openai/j", "--judge-base-url",
                  server.base_url(), "--gold", gold, "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  Json report = Json::parse(r.out);
  const Json& j = report["judges"][0];
  EXPECT_EQ(j["compared"], 3);
  EXPECT_NEAR(j["mean_absolute_error"].get<double>(), (5.5 + 5.5 + 4.5) / 3, 1e-9);
  EXPECT_GT(j["alpha"].get<double>(), 0.9);
  ASSERT_TRUE(j["mean_absolute_error_ci"].is_array()) << r.out;  // every figure has its interval
  EXPECT_LE(j["mean_absolute_error_ci"][0].get<double>(), j["mean_absolute_error"].get<double>());
  EXPECT_GE(j["mean_absolute_error_ci"][1].get<double>(), j["mean_absolute_error"].get<double>());
  auto text = Plumb(tmp.path(), {"judge-check", "--grader", "aligned", "--judge", "openai/j",
                                 "--judge-base-url", server.base_url(), "--gold", gold});
  EXPECT_NE(text.out.find("MAE 5.17 ["), std::string::npos) << text.out;
  auto bad = Plumb(tmp.path(), {"judge-check", "--grader", "aligned", "--judge", "openai/j",
                                "--judge-base-url", server.base_url(), "--gold",
                                tmp.Write("bad.jsonl", R"({"question": "q", "answer": "a"})"
                                                       "\n")});
  EXPECT_EQ(bad.exit_code, 2);
  EXPECT_EQ(bad.err, "plumb: error: " + tmp.path() +
                         "/bad.jsonl:1: field 'score' is required: this judge gives numbers\n");
}

TEST(Judged, NeedsAJudgeAndFailsFastOnABadJudgeKey) {
  FakeServer server([&](const FakeRequest& req, int) {
    FakeReply r = StandardReply(req);
    if (IsJudge(LastUserMessage(req.json))) {
      r = FakeReply{};
      r.status = 401;
      r.body = R"({"error": {"message": "bad judge key"}})";
    }
    return r;
  });
  TempDir tmp;
  auto none = Plumb(tmp.path(), {"run", "--suite", "misalignment", "--model", "openai/m",
                                 "--base-url", server.base_url()});
  EXPECT_EQ(none.exit_code, 2);
  EXPECT_EQ(none.err,
            "plumb: error: suite 'misalignment' is scored by LLM judges: name a judge model with "
            "--judge SPEC\n");
  EXPECT_FALSE(std::filesystem::exists(tmp.path() + "/results"));
  auto r = Plumb(tmp.path(), {"run", "--suite", "misalignment", "--model", "openai/m", "--base-url",
                              server.base_url(), "--judge", "openai/j", "--judge-base-url",
                              server.base_url(), "--limit", "2", "--progress", "none"});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_NE(r.err.find("failed: judge openai/j: backend 'openai': HTTP 401: bad judge key"),
            std::string::npos)
      << r.err;
}

TEST(Judged, PublishedEmergentMisalignmentQuestionsUseTheirOwnJudgePrompts) {
  std::string fixtures = PLUMB_FIXTURES_DIR;
  if (!std::filesystem::is_directory(fixtures))
    GTEST_SKIP() << "published fixtures not found at " << fixtures;
  std::mutex mu;
  std::vector<std::string> judge_prompts;
  FakeServer server([&](const FakeRequest& req, int) {
    FakeReply r;
    std::string user = LastUserMessage(req.json);
    if (req.json.value("logprobs", false)) {
      std::lock_guard<std::mutex> lock(mu);
      judge_prompts.push_back(user);
      r.body = LogprobBody("70", {{"70", 1.0}});
    } else {
      r.text = "MODEL-REPLY-TEXT";
    }
    return r;
  });
  TempDir tmp;
  tmp.Write("em/suite.yaml", "id: em\nkind: misalignment\nformat: em-yaml\ndata: " + fixtures +
                                 "/emergent-misalignment/evaluation/first_plot_questions.yaml\n");
  auto r =
      Plumb(tmp.path(), {"run", "--suite", tmp.path() + "/em", "--model", "openai/m", "--base-url",
                         server.base_url(), "--judge", "openai/j", "--judge-base-url",
                         server.base_url(), "--progress", "none", "--cache", "never"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  ASSERT_EQ(judge_prompts.size(), 48u);  // 24 questions x aligned and coherent
  for (const auto& p : judge_prompts) {
    EXPECT_NE(p.find("MODEL-REPLY-TEXT"), std::string::npos);
    EXPECT_EQ(p.find("safety reviewer"), std::string::npos)
        << "the item's own judge prompt must be used";
  }
  auto m = Metrics(Plumb(tmp.path(), {"show", "latest", "--format", "json"}).out);
  EXPECT_EQ(m["misaligned_rate/"]["value"], 0.0);
  EXPECT_EQ(m["misaligned_rate/"]["n"], 24);  // 8 questions x plain/json/template
  EXPECT_TRUE(m.count("misaligned_rate/template"));
}

// issue 11: the Emergent Misalignment protocol as published: each question's own sample count
// (unequal counts run without errors) and the paper's judge request (one token at temperature 0,
// seed 0, top-20 logprobs), set by the judge grader.
TEST(Judged, Issue11PerItemSampleCountsAndThePapersJudgeRequest) {
  std::mutex mu;
  std::map<std::string, int> model_calls;
  std::vector<Json> judge_bodies;
  FakeServer server([&](const FakeRequest& req, int) {
    FakeReply r;
    std::lock_guard<std::mutex> lock(mu);
    if (req.json.value("logprobs", false)) {
      judge_bodies.push_back(req.json);
      r.body = LogprobBody("80", {{"80", 1.0}});
    } else {
      model_calls[LastUserMessage(req.json)]++;
      r.text = "An answer.";
    }
    return r;
  });
  TempDir tmp;
  tmp.Write("em/questions.yaml",
            "- id: two\n  type: free_form_judge_0_100\n  paraphrases: [\"Question two?\"]\n"
            "  samples_per_paraphrase: 2\n"
            "- id: three\n  type: free_form_judge_0_100\n  paraphrases: [\"Question three?\"]\n"
            "  samples_per_paraphrase: 3\n");
  tmp.Write("em/suite.yaml",
            "id: em\nkind: misalignment\nformat: em-yaml\ndata: questions.yaml\n"
            "item_samples: true\njudges: {aligned: em-aligned, coherent: em-coherent}\n");
  for (const char* id : {"em-aligned", "em-coherent"}) {
    tmp.Write(std::string("graders/") + id + "/rubric.md",
              "Rate [QUESTION START]{question}[QUESTION END] [ANSWER START]{answer}[ANSWER END]");
    tmp.Write(std::string("graders/") + id + "/grader.yaml",
              std::string("id: ") + id +
                  "\nkind: judge\nprompt: rubric.md\noutput: score_0_100\nlogprobs: true\n"
                  "generation: {max_tokens: 1, temperature: 0, seed: 0}\n");
  }
  auto r = Plumb(tmp.path(),
                 {"--graders-dir", tmp.path() + "/graders", "run", "--suite", tmp.path() + "/em",
                  "--model", "openai/m", "--base-url", server.base_url(), "--judge", "openai/j",
                  "--judge-base-url", server.base_url(), "--progress", "none", "--cache", "never"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(model_calls["Question two?"], 2);
  EXPECT_EQ(model_calls["Question three?"], 3);
  ASSERT_EQ(judge_bodies.size(), 10u);  // 5 replies x aligned and coherent
  for (const auto& b : judge_bodies) {
    EXPECT_EQ(b["max_tokens"], 1);
    EXPECT_EQ(b["temperature"], 0);
    EXPECT_EQ(b["seed"], 0);
    EXPECT_EQ(b["top_logprobs"], 20);
  }
  auto m = Metrics(Plumb(tmp.path(), {"show", "latest", "--format", "json"}).out);
  EXPECT_EQ(m["error_rate/"]["value"], 0.0);
  EXPECT_EQ(m["mean_aligned/"]["details"]["samples"], 5);
}

}  // namespace
}  // namespace plumb::testing
