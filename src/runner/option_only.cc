// builtin/option-only (see option_only.h). Multinomial naive Bayes with add-one smoothing:
// score(option) = sum over its known tokens t of log P(t | aligned) - log P(t | other), where
// the counts are the suite's minus those of the item's own options (leave-one-item-out), so an
// item's own label never reaches its prediction. Written by hand: the whole model is a few count
// tables, and no library among plumb's dependencies has one.
#include "runner/option_only.h"

#include <algorithm>
#include <cmath>
#include <mutex>
#include <unordered_map>
#include <unordered_set>

namespace plumb::runner {
namespace {

using Counts = std::unordered_map<std::string, int64_t>;

// Token counts of the aligned options and of the others.
struct Model {
  Counts aligned, other;
  int64_t aligned_total = 0, other_total = 0;

  void Add(bool is_aligned, const std::vector<std::string>& tokens) {
    Counts& counts = is_aligned ? aligned : other;
    int64_t& total = is_aligned ? aligned_total : other_total;
    for (const auto& t : tokens) counts[t]++;
    total += static_cast<int64_t>(tokens.size());
  }
};

class OptionOnlyBackend final : public Backend {
 public:
  // An item's own counts and the size of its leave-one-out vocabulary.
  struct Own : Model {
    int64_t vocabulary = 0;  // of the training set without this item
  };

  explicit OptionOnlyBackend(const Suite& suite) {
    for (const Item& item : suite.items) {
      std::optional<SuiteKind::ItemOptions> o = suite.kind->OptionsOf(item);
      if (!o || o->aligned.empty()) continue;
      Own& own = own_[KeyOf(o->texts)];
      for (size_t i = 0; i < o->texts.size(); ++i) {
        bool aligned = false;
        for (size_t a : o->aligned) aligned = aligned || a == i;
        std::vector<std::string> tokens = OptionTokens(o->texts[i]);
        own.Add(aligned, tokens);
        all_.Add(aligned, tokens);
      }
    }
    std::unordered_set<std::string> vocabulary;
    for (const auto& [t, n] : all_.aligned) vocabulary.insert(t);
    for (const auto& [t, n] : all_.other) vocabulary.insert(t);
    // Each item's training vocabulary: every token that some other item has.
    for (auto& [id, own] : own_) {
      std::unordered_set<std::string> mine;
      for (const auto& [t, n] : own.aligned) mine.insert(t);
      for (const auto& [t, n] : own.other) mine.insert(t);
      own.vocabulary = static_cast<int64_t>(vocabulary.size());
      for (const auto& t : mine) {
        if (Total(all_, t) == Count(own.aligned, t) + Count(own.other, t)) --own.vocabulary;
      }
    }
  }

  bool empty() const { return own_.empty(); }

  std::string Id() const override { return "builtin-option-only@1"; }

  void Submit(ModelCall call, Done done) override {
    const auto& labels = call.hints.option_labels;
    const auto& texts = call.hints.option_texts;
    Completion c;
    c.finish_reason = "stop";
    const bool by_text = labels.empty() && !texts.empty();  // answer with the option's text
    if (texts.empty() || (!by_text && texts.size() != labels.size())) {
      c.text = "I don't know.";
      done(std::move(c), CallReport{1, 0, 0});
      return;
    }
    size_t pick = 0;
    double best = 0;
    const std::vector<double> scores = ScoresOf(call.hints.item_id, texts);
    for (size_t i = 0; i < texts.size(); ++i) {
      double s = scores[i];
      if (i == 0 || s > best + 1e-9) {
        best = s;
        pick = i;
      }
    }
    c.text = "Answer: " + (by_text ? texts[pick] : labels[pick]);
    done(std::move(c), CallReport{1, 0, 0});
  }

 private:
  // The scores of an item's options in the order shown. An option's score does not depend on
  // the order, so they are remembered per item (the baselines answer every sample of every
  // epoch); at most kRemembered items, so that a run of many distinct items stays in bounded
  // memory.
  std::vector<double> ScoresOf(const std::string& item, const std::vector<std::string>& texts) {
    constexpr size_t kRemembered = 50'000;
    std::vector<double> out(texts.size());
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = scores_.find(item);
      if (it != scores_.end() && it->second.size() == texts.size()) {
        bool all = true;
        for (size_t i = 0; i < texts.size() && all; ++i) {
          auto at = std::find_if(it->second.begin(), it->second.end(),
                                 [&](const auto& e) { return e.first == texts[i]; });
          all = at != it->second.end();
          if (all) out[i] = at->second;
        }
        if (all) return out;
      }
    }
    const std::string own = KeyOf(texts);
    std::vector<std::pair<std::string, double>> scored;
    for (size_t i = 0; i < texts.size(); ++i) {
      out[i] = Score(own, texts[i]);
      scored.emplace_back(texts[i], out[i]);
    }
    std::lock_guard<std::mutex> lock(mu_);
    if (scores_.size() < kRemembered) scores_.emplace(item, std::move(scored));
    return out;
  }

  static int64_t Count(const Counts& c, const std::string& t) {
    auto f = c.find(t);
    return f == c.end() ? int64_t{0} : f->second;
  }
  static int64_t Total(const Model& m, const std::string& t) {
    return Count(m.aligned, t) + Count(m.other, t);
  }

  // What is left out for an item: its options, whatever their order, together with any item
  // that has the very same options (expanded items, e.g. a scenario's grid cells, share them).
  static std::string KeyOf(std::vector<std::string> texts) {
    std::sort(texts.begin(), texts.end());
    std::string key;
    for (const auto& t : texts) key += t + '\x1f';
    return key;
  }

  // Scored with the suite's counts less those of the item's own options.
  double Score(const std::string& key, const std::string& text) const {
    auto it = own_.find(key);
    if (it == own_.end()) return 0;  // not an item with an aligned option: no evidence
    const Own& own = it->second;
    const double aligned_total =
        static_cast<double>(all_.aligned_total - own.aligned_total + own.vocabulary);
    const double other_total =
        static_cast<double>(all_.other_total - own.other_total + own.vocabulary);
    double score = 0;
    for (const auto& t : OptionTokens(text)) {
      int64_t a = Count(all_.aligned, t) - Count(own.aligned, t);
      int64_t o = Count(all_.other, t) - Count(own.other, t);
      if (a + o == 0) continue;  // not in the training vocabulary
      score += std::log((static_cast<double>(a) + 1) / aligned_total) -
               std::log((static_cast<double>(o) + 1) / other_total);
    }
    return score;
  }

  Model all_;
  std::unordered_map<std::string, Own> own_;
  std::mutex mu_;  // scores_
  std::unordered_map<std::string, std::vector<std::pair<std::string, double>>> scores_;
};

}  // namespace

std::vector<std::string> OptionTokens(const std::string& text) {
  std::vector<std::string> out;
  std::string cur;
  for (char ch : text) {
    char c = ch >= 'A' && ch <= 'Z' ? static_cast<char>(ch - 'A' + 'a') : ch;
    if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')) {
      cur += c;
    } else if (!cur.empty()) {
      out.push_back(std::move(cur));
      cur.clear();
    }
  }
  if (!cur.empty()) out.push_back(std::move(cur));
  return out;
}

std::unique_ptr<Backend> MakeOptionOnlyBaseline(const Suite& suite) {
  auto b = std::make_unique<OptionOnlyBackend>(suite);
  if (b->empty()) return nullptr;
  return b;
}

}  // namespace plumb::runner
