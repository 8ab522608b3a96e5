// HTML and SVG written by hand: there is no Debian-packaged C++ HTML templating or charting
// library, and what is needed (escaped text, rectangles, lines) is small.
#include "report/html.h"

#include <fmt/format.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "plumb/version.h"

namespace plumb::html {
namespace {

constexpr const char* kStyle = R"css(
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0 auto; max-width: 1200px;
       padding: 16px 24px 48px; color: #1d2330; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.25em; margin-top: 2em; border-bottom: 1px solid #d8dde6; padding-bottom: 4px; }
h3 { font-size: 1.05em; margin-top: 1.4em; }
.meta, .note, .footnote { color: #5b6475; font-size: 0.9em; }
table { border-collapse: collapse; margin: 8px 0 12px; font-size: 0.9em; }
th, td { border-bottom: 1px solid #e4e8ef; padding: 4px 8px; text-align: left; vertical-align: top; }
th { background: #f3f5f9; white-space: nowrap; }
table.sortable th { cursor: pointer; user-select: none; }
table.sortable th[data-dir="asc"]::after { content: " \25B2"; font-size: 0.7em; }
table.sortable th[data-dir="desc"]::after { content: " \25BC"; font-size: 0.7em; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
tr.reference td { color: #6b7385; font-style: italic; }
.text { white-space: pre-wrap; max-height: 14em; overflow: auto; max-width: 36em; font-family: ui-monospace, monospace;
        font-size: 0.85em; background: #f8f9fb; padding: 4px; }
details { margin: 6px 0; }
summary { cursor: pointer; font-weight: 600; }
input.filter { margin: 6px 0; padding: 4px 6px; width: 24em; }
svg { display: block; margin: 8px 0; }
svg text { font-family: system-ui, sans-serif; font-size: 11px; fill: #1d2330; }
nav a { margin-right: 12px; }
.error { color: #a4262c; }
.transcript { max-width: 40em; font-size: 0.85em; }
.transcript .turn { border-left: 3px solid #d8dde6; margin: 4px 0; padding: 2px 6px; }
.transcript .call { font-family: ui-monospace, monospace; margin: 2px 0; word-break: break-all; }
.transcript .call.decisive { background: #fff4ce; border: 1px solid #e0b400; padding: 2px 4px; }
.transcript .call.invalid { color: #a4262c; }
.transcript .result { max-height: 8em; margin-left: 1.2em; }
.outcome-aligned { color: #1e7b34; font-weight: 600; }
.outcome-misaligned { color: #a4262c; font-weight: 600; }
.outcome-neutral { color: #5b6475; }
)css";

// Sortable tables (click a header; numeric cells sort by data-v) and row filters. Sets
// body[data-ready] so a headless browser can tell the script ran.
constexpr const char* kScript = R"js(
(function () {
  function key(cell) { return cell.hasAttribute('data-v') ? cell.getAttribute('data-v') : cell.textContent.trim(); }
  function sort(table, index, th) {
    var dir = th.getAttribute('data-dir') === 'asc' ? 'desc' : 'asc';
    table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('data-dir'); });
    th.setAttribute('data-dir', dir);
    var body = table.tBodies[0];
    var rows = Array.prototype.slice.call(body.rows);
    rows.sort(function (a, b) {
      var x = key(a.cells[index]), y = key(b.cells[index]);
      var nx = parseFloat(x), ny = parseFloat(y);
      var c = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : x.localeCompare(y);
      return dir === 'asc' ? c : -c;
    });
    rows.forEach(function (r) { body.appendChild(r); });
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    table.querySelectorAll('th').forEach(function (th, i) {
      th.addEventListener('click', function () { sort(table, i, th); });
    });
    table.classList.add('sortable-ready');
  });
  document.querySelectorAll('input.filter').forEach(function (input) {
    var table = document.getElementById(input.getAttribute('data-table'));
    input.addEventListener('input', function () {
      var q = input.value.toLowerCase();
      Array.prototype.forEach.call(table.tBodies[0].rows, function (r) {
        r.style.display = r.textContent.toLowerCase().indexOf(q) >= 0 ? '' : 'none';
      });
    });
  });
  document.body.setAttribute('data-ready', '1');
})();
)js";

// 'sha256-<base64>' of the inline script, for the Content-Security-Policy: only that script may
// run, so even a reply that escaped escaping could not execute.
std::string ScriptSource() {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(kScript, std::strlen(kScript), digest, &len, EVP_sha256(), nullptr);
  unsigned char b64[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
  int n = EVP_EncodeBlock(b64, digest, static_cast<int>(len));
  return "'sha256-" + std::string(reinterpret_cast<char*>(b64), static_cast<size_t>(n)) + "'";
}

std::string Num(double v) { return fmt::format("{:.2f}", v); }

struct Axis {
  double lo = 0, hi = 100, step = 25;
};

// The axis of values: [0, 100] in steps of 25 when they all fit, else their range (with 0)
// widened to whole multiples of a round step (1, 2, 2.5 or 5 times a power of ten) that gives
// four to eight ticks.
Axis AxisOf(const std::vector<double>& values) {
  if (values.empty()) return {};
  double lo = std::min(0.0, *std::min_element(values.begin(), values.end()));
  double hi = std::max(0.0, *std::max_element(values.begin(), values.end()));
  if (lo >= 0 && hi <= 100) return {};
  double raw = std::max((hi - lo) / 4, 1e-9);
  double power = std::pow(10.0, std::floor(std::log10(raw)));
  double step = power * 10;
  for (double m : {1.0, 2.0, 2.5, 5.0}) {
    if (m * power >= raw) {
      step = m * power;
      break;
    }
  }
  return {std::floor(lo / step) * step, std::ceil(hi / step) * step, step};
}

}  // namespace

std::string Escape(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (char c : s) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&#39;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string ContentSecurityPolicy() {
  static const std::string policy =
      "default-src 'none'; style-src 'unsafe-inline'; img-src data:; script-src " + ScriptSource() +
      "; base-uri 'none'; form-action 'none'";
  return policy;
}

std::string Page(const std::string& title, const std::string& body) {
  return fmt::format(
      "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
      "<meta http-equiv=\"Content-Security-Policy\" content=\"{}\">\n"
      "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
      "<meta name=\"generator\" content=\"plumb {} "
      "({})\">\n<title>{}</title>\n<style>{}</style>\n</head>\n<body>\n{}\n"
      "<script>{}</script>\n</body>\n</html>\n",
      ContentSecurityPolicy(), PLUMB_VERSION, PLUMB_GIT_SHA, Escape(title), kStyle, body, kScript);
}

std::string BarChart(const std::string& title, const std::vector<Bar>& bars) {
  const double label_w = 230, x0 = 240, x1 = 660, row = 22, top = 26;
  std::vector<double> all;
  for (const auto& b : bars) {
    for (const auto& v : {b.value, b.low, b.high}) {
      if (v) all.push_back(*v);
    }
  }
  const Axis axis = AxisOf(all);
  const double lo = axis.lo, hi = axis.hi;
  auto x = [&](double v) { return x0 + (v - lo) / (hi - lo) * (x1 - x0); };
  double height = top + row * static_cast<double>(bars.size()) + 28;
  std::string svg = fmt::format(
      "<svg class=\"chart\" role=\"img\" width=\"720\" height=\"{:.0f}\" viewBox=\"0 0 720 "
      "{:.0f}\">"
      "<title>{}</title><text x=\"0\" y=\"14\" font-weight=\"600\">{}</text>",
      height, height, Escape(title), Escape(title));
  double base = x(std::clamp(0.0, lo, hi));
  for (size_t i = 0; i < bars.size(); ++i) {
    const Bar& b = bars[i];
    double y = top + row * static_cast<double>(i);
    std::string label = b.label.size() > 34 ? b.label.substr(0, 33) + "..." : b.label;
    svg += fmt::format("<text x=\"{:.0f}\" y=\"{:.1f}\" text-anchor=\"end\"{}>{}</text>", label_w,
                       y + 14, b.reference ? " font-style=\"italic\"" : "", Escape(label));
    if (!b.value) {
      svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\">no value</text>", x0 + 4, y + 14);
      continue;
    }
    double xv = x(*b.value);
    svg += fmt::format(
        "<rect class=\"bar\" x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"14\" "
        "fill=\"{}\"/>",
        std::min(base, xv), y + 3, std::max(1.0, std::abs(xv - base)),
        b.reference ? "#c3c8d2" : "#4f7cc9");
    double end = xv;
    if (b.low && b.high) {
      double l = x(*b.low), h = x(*b.high), cy = y + 10;
      svg += fmt::format(
          "<g class=\"whisker\" stroke=\"#1d2330\" stroke-width=\"1.2\"><line x1=\"{0:.1f}\" "
          "y1=\"{2:.1f}\" x2=\"{1:.1f}\" "
          "y2=\"{2:.1f}\"/><line x1=\"{0:.1f}\" y1=\"{3:.1f}\" x2=\"{0:.1f}\" "
          "y2=\"{4:.1f}\"/><line x1=\"{1:.1f}\" "
          "y1=\"{3:.1f}\" x2=\"{1:.1f}\" y2=\"{4:.1f}\"/></g>",
          l, h, cy, cy - 4, cy + 4);
      end = std::max(end, h);
    }
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>", std::min(end + 6, 690.0),
                       y + 14, Num(*b.value));
  }
  double axis_y = top + row * static_cast<double>(bars.size()) + 6;
  svg += fmt::format(
      "<line x1=\"{:.0f}\" y1=\"{:.1f}\" x2=\"{:.0f}\" y2=\"{:.1f}\" stroke=\"#8a93a5\"/>", x0,
      axis_y, x1, axis_y);
  int ticks = static_cast<int>(std::lround((hi - lo) / axis.step));
  for (int t = 0; t <= ticks; ++t) {
    double v = lo + axis.step * t;
    svg += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\" fill=\"#5b6475\">{:g}</text>", x(v),
        axis_y + 14, std::abs(v) < axis.step * 1e-9 ? 0.0 : v);
  }
  return svg + "</svg>\n";
}

std::string HeatMap(const std::string& title, const std::vector<std::string>& rows,
                    const std::vector<std::string>& columns,
                    const std::vector<std::vector<std::optional<double>>>& values,
                    bool higher_is_better) {
  // Columns wide enough for their labels (up to 24 characters; longer ones are cut, whole in
  // the tooltip).
  size_t longest = 0;
  for (const auto& c : columns) longest = std::max(longest, std::min<size_t>(c.size(), 24));
  const double label_w = 230, cell_w = std::max(74.0, 7.0 * static_cast<double>(longest) + 8),
               cell_h = 22, top = 44;
  double lo = 1e300, hi = -1e300;
  for (const auto& r : values) {
    for (const auto& v : r) {
      if (v) lo = std::min(lo, *v), hi = std::max(hi, *v);
    }
  }
  double width = label_w + 10 + cell_w * static_cast<double>(columns.size());
  double height = top + cell_h * static_cast<double>(rows.size()) + 8;
  std::string svg = fmt::format(
      "<svg class=\"heatmap\" role=\"img\" width=\"{0:.0f}\" height=\"{1:.0f}\" viewBox=\"0 0 "
      "{0:.0f} {1:.0f}\"><title>{2}</title>"
      "<text x=\"0\" y=\"14\" font-weight=\"600\">{2}</text>",
      width, height, Escape(title));
  for (size_t c = 0; c < columns.size(); ++c) {
    std::string label = columns[c].size() > 24 ? columns[c].substr(0, 23) + "..." : columns[c];
    svg += fmt::format(
        "<text x=\"{:.1f}\" y=\"{:.0f}\" text-anchor=\"middle\"><title>{}</title>{}</text>",
        label_w + 10 + cell_w * (static_cast<double>(c) + 0.5), top - 8, Escape(columns[c]),
        Escape(label));
  }
  for (size_t r = 0; r < rows.size(); ++r) {
    double y = top + cell_h * static_cast<double>(r);
    std::string label = rows[r].size() > 34 ? rows[r].substr(0, 33) + "..." : rows[r];
    svg += fmt::format("<text x=\"{:.0f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>", label_w,
                       y + 15, Escape(label));
    for (size_t c = 0; c < columns.size(); ++c) {
      const auto& v = values[r][c];
      double x = label_w + 10 + cell_w * static_cast<double>(c);
      // Red (worst) to green (best) in the metric's good direction.
      double t = v && hi > lo ? (*v - lo) / (hi - lo) : 0.5;
      if (!higher_is_better) t = 1 - t;
      std::string fill = v ? fmt::format("hsl({:.0f}, 62%, 72%)", 120 * t) : "#eef0f4";
      svg += fmt::format(
          "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.0f}\" height=\"{:.0f}\" fill=\"{}\" "
          "stroke=\"#fff\"/>"
          "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>",
          x, y, cell_w, cell_h, fill, x + cell_w / 2, y + 15, v ? fmt::format("{:.1f}", *v) : "-");
    }
  }
  return svg + "</svg>\n";
}

std::string Histogram(const std::string& title, const std::vector<double>& values, double lo,
                      double hi, int bins) {
  const double x0 = 30, x1 = 330, top = 32, h = 90;
  std::vector<int> counts(static_cast<size_t>(bins), 0);
  for (double v : values) {
    int b = static_cast<int>((v - lo) / (hi - lo) * bins);
    counts[static_cast<size_t>(std::clamp(b, 0, bins - 1))]++;
  }
  int most = std::max(1, *std::max_element(counts.begin(), counts.end()));
  std::string svg = fmt::format(
      "<svg class=\"histogram\" role=\"img\" width=\"340\" height=\"{0:.0f}\" viewBox=\"0 0 340 "
      "{0:.0f}\"><title>{1}</title>"
      "<text x=\"0\" y=\"14\" font-weight=\"600\">{1}</text>",
      top + h + 20, Escape(title));
  double w = (x1 - x0) / bins;
  for (int b = 0; b < bins; ++b) {
    int count = counts[static_cast<size_t>(b)];
    double bh = h * count / most;
    svg += fmt::format(
        "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" "
        "fill=\"#4f7cc9\"><title>{}</title></rect>",
        x0 + w * b + 1, top + h - bh, w - 2, bh, count);
    if (count > 0) {
      svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>",
                         x0 + w * (b + 0.5), top + h - bh - 3, count);
    }
  }
  // Axis labels at every other bin edge.
  for (int b = 0; b <= bins; b += 2) {
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{:.0f}\" text-anchor=\"middle\">{:g}</text>",
                       x0 + w * b, top + h + 14, lo + (hi - lo) * b / bins);
  }
  return svg + "</svg>\n";
}

std::string SectionId(const LeaderboardSection& s) {
  return fmt::format("lb-{}-v{}", s.suite_id, s.suite_version);
}

// The run number of a leaderboard row, linked as `links` says.
std::string RunCell(int64_t run_id, RunLinks links) {
  if (run_id == 0) return "-";
  switch (links) {
    case RunLinks::kNone:
      return std::to_string(run_id);
    case RunLinks::kInPage:
      return fmt::format("<a href=\"#run-{0}\">{0}</a>", run_id);
    case RunLinks::kServed:
      return fmt::format("<a href=\"/runs/{0}#run-{0}\">{0}</a>", run_id);
  }
  return std::to_string(run_id);
}

namespace {

// A stability column's cell, sortable by its value.
std::string StabilityCell(const std::optional<Metric>& m) {
  if (!m || !m->value) return "<td class=\"num\">-</td>";
  return fmt::format("<td class=\"num\" data-v=\"{}\">{}</td>", *m->value,
                     Escape(StabilityText(m)));
}

}  // namespace

std::string SectionHtml(const LeaderboardSection& s, RunLinks links, bool with_stability) {
  std::string id = SectionId(s);
  std::string out = fmt::format(
      "<section class=\"leaderboard\" id=\"{}\">\n<h2>{} <span class=\"meta\">v{}: {}, {} is "
      "better</span></h2>\n",
      Escape(id), Escape(s.suite_id), s.suite_version, Escape(s.metric),
      s.higher_is_better ? "higher" : "lower");
  out += fmt::format(
      "<table class=\"sortable leaderboard-table\" "
      "id=\"{}-table\"><thead><tr><th>#</th><th>model</th><th>{}</th>"
      "<th>95% CI</th><th>n</th><th>errors</th><th>judge "
      "errors</th>{}<th>run</th><th>date</th><th>plumb</th></tr></thead><tbody>\n",
      Escape(id), Escape(s.metric),
      with_stability ? "<th>consistency</th><th>position bias</th>" : "");
  std::vector<Bar> bars;
  for (const auto& r : s.rows) {
    auto v = r.metric.value;
    out += fmt::format(
        "<tr{}><td class=\"num\" data-v=\"{}\">{}</td><td>{}</td><td class=\"num\" "
        "data-v=\"{}\">{}</td><td class=\"num\">{}</td>"
        "<td class=\"num\">{}</td><td class=\"num\">{}</td><td class=\"num\">{}</td>{}<td "
        "class=\"num\">{}</td><td>{}</td><td>{}</td></tr>\n",
        r.reference ? " class=\"reference\"" : "", r.rank ? r.rank : 9999,
        r.reference ? "ref" : (r.rank ? std::to_string(r.rank) : "-"), Escape(r.model_spec),
        v ? fmt::format("{}", *v) : "", FormatValue(v), FormatInterval(r.metric), r.metric.n,
        r.errors && r.errors->k ? std::to_string(*r.errors->k) : (r.run.id ? "0" : "-"),
        r.judge_errors ? fmt::format("{:.1f}%", *r.judge_errors->value) : "-",
        with_stability ? StabilityCell(r.consistency) + StabilityCell(r.position_bias) : "",
        RunCell(r.run.id, links),
        Escape(r.run.finished_at.size() >= 10 ? r.run.finished_at.substr(0, 10) : "-"),
        Escape(r.run.plumb_version));
    bars.push_back(Bar{r.model_spec, v, r.metric.ci_low, r.metric.ci_high, r.reference});
  }
  out += "</tbody></table>\n";
  out += BarChart(fmt::format("{}: {} with 95% intervals", s.suite_id, s.metric), bars);
  return out + "</section>\n";
}

std::string OverviewHtml(const Leaderboard& board) {
  LeaderboardOverview o = Overview(board);
  if (o.models.empty()) return "";
  std::string out =
      "<section class=\"overview\" id=\"overview\">\n<h2>Overview</h2>\n"
      "<table class=\"sortable overview-table\" id=\"overview-table\"><thead><tr><th>model</th>";
  for (const auto& s : board.sections) {
    out += fmt::format("<th><a href=\"#{}\">{} v{}</a><br>{} {}</th>", Escape(SectionId(s)),
                       Escape(s.suite_id), s.suite_version, Escape(s.metric),
                       s.higher_is_better ? "&#8593;" : "&#8595;");
  }
  out += "</tr></thead><tbody>\n";
  for (size_t m = 0; m < o.models.size(); ++m) {
    out += fmt::format("<tr{}><td>{}</td>", o.reference[m] ? " class=\"reference\"" : "",
                       Escape(o.models[m]));
    for (const auto* r : o.cells[m]) {
      bool value = r && r->metric.value;
      out += fmt::format("<td class=\"num\"{}>{}</td>",
                         value ? fmt::format(" data-v=\"{}\"", *r->metric.value) : "",
                         Escape(OverviewCell(r)));
    }
    out += "</tr>\n";
  }
  return out + "</tbody></table>\n</section>\n";
}

std::string LeaderboardBody(const Leaderboard& board, RunLinks links) {
  if (board.sections.empty()) return "<p class=\"note\">No completed runs yet.</p>\n";
  std::string out = OverviewHtml(board);
  for (const auto& s : board.sections) out += SectionHtml(s, links, board.with_stability);
  out += fmt::format("<p class=\"footnote\">{}</p>\n", Escape(kRankFootnote));
  for (const auto& n : board.notes)
    out += fmt::format("<p class=\"note\">Note: {}</p>\n", Escape(n));
  return out;
}

std::string LeaderboardPage(const Leaderboard& board, RunLinks links) {
  return Page(
      "plumb leaderboard",
      fmt::format("<h1>plumb leaderboard</h1>\n<p class=\"meta\">generated {} by plumb {}</p>\n{}",
                  Escape(board.generated_at), PLUMB_VERSION, LeaderboardBody(board, links)));
}

}  // namespace plumb::html
