// Progress bar and periodic progress lines.
#include "runner/progress.h"

#include <fmt/format.h>
#include <unistd.h>

namespace plumb::runner {
namespace {

std::string Duration(double seconds) {
  int s = static_cast<int>(seconds + 0.5);
  if (s >= 3600) return fmt::format("{}:{:02}:{:02}", s / 3600, s / 60 % 60, s % 60);
  return fmt::format("{}:{:02}", s / 60, s % 60);
}

}  // namespace

Progress::Progress(ProgressMode mode, FILE* out) : mode_(mode), out_(out) {
  if (mode_ == ProgressMode::kAuto) {
    mode_ = isatty(fileno(out)) ? ProgressMode::kBar : ProgressMode::kLines;
  }
  start_ = last_ = std::chrono::steady_clock::now();
}

std::string Progress::Render(const ProgressState& s, bool bar) const {
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  double rate = elapsed > 0 ? static_cast<double>(s.done) / elapsed : 0;
  double pct =
      s.total > 0 ? 100.0 * static_cast<double>(s.done) / static_cast<double>(s.total) : 100;
  std::string eta = rate > 0 ? Duration(static_cast<double>(s.total - s.done) / rate) : "?";
  std::string line;
  if (bar) {
    constexpr int kWidth = 24;
    int filled = s.total > 0 ? static_cast<int>(kWidth * s.done / s.total) : kWidth;
    line = fmt::format("[{}{}] ", std::string(filled, '#'), std::string(kWidth - filled, '.'));
  } else {
    line = "plumb: progress ";
  }
  line += fmt::format("{}/{} ({:.0f}%)  {:.1f}/s  errors {}", s.done, s.total, pct, rate, s.errors);
  if (s.retrying > 0) line += fmt::format("  waiting to retry {}", s.retrying);
  if (s.rate_limited > 0) line += fmt::format("  held by rate limits {}", s.rate_limited);
  if (s.batches > 0) {
    // Batch mode: throughput means little while the provider works; show where batches are.
    line += fmt::format("  batches {} ({}), {}/{} requests done, waited {}", s.batches,
                        s.batch_states, s.batch_done, s.batch_requests,
                        Duration(s.batch_waited_s));
    return line;
  }
  line += "  ETA " + eta;
  return line;
}

bool Progress::Due() const {
  if (mode_ == ProgressMode::kNone) return false;
  auto now = std::chrono::steady_clock::now();
  auto interval = mode_ == ProgressMode::kBar ? std::chrono::milliseconds(100)
                                              : std::chrono::milliseconds(10'000);
  if (drawn_ && now - last_ < interval) return false;
  if (!drawn_ && mode_ == ProgressMode::kLines && now - start_ < interval) return false;
  return true;
}

void Progress::Update(const ProgressState& s) {
  if (!Due()) return;
  auto now = std::chrono::steady_clock::now();
  last_ = now;
  drawn_ = true;
  if (mode_ == ProgressMode::kBar) {
    std::fprintf(out_, "\r%s\033[K", Render(s, true).c_str());
  } else {
    std::fprintf(out_, "%s\n", Render(s, false).c_str());
  }
  std::fflush(out_);
}

void Progress::Finish(const ProgressState& s) {
  if (mode_ == ProgressMode::kNone) return;
  if (mode_ == ProgressMode::kBar) {
    std::fprintf(out_, "\r%s\033[K\n", Render(s, true).c_str());
  } else if (drawn_) {
    std::fprintf(out_, "%s\n", Render(s, false).c_str());
  }
  std::fflush(out_);
}

}  // namespace plumb::runner
