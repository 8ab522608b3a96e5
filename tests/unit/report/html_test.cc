// The report's HTML building blocks: escaping, and SVG charts whose geometry matches the numbers.
#include "report/html.h"

#include <gtest/gtest.h>
#include <openssl/evp.h>

namespace plumb::html {
namespace {

TEST(Html, EscapesEveryMarkupCharacter) {
  EXPECT_EQ(Escape("<a href=\"x\" title='y'>&</a>"),
            "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;");
  EXPECT_EQ(Escape("plain text"), "plain text");
}

TEST(Html, BarWhiskersSitAtTheIntervalBounds) {
  // Axis 0-100 drawn from x=240 to x=660: 50 -> 450, 40 -> 408, 60 -> 492.
  std::string svg = BarChart(
      "t", {Bar{"<model>", 50.0, 40.0, 60.0, false}, Bar{"none", std::nullopt, {}, {}, true}});
  EXPECT_NE(svg.find("<rect class=\"bar\" x=\"240.0\" y=\"29.0\" width=\"210.0\""),
            std::string::npos)
      << svg;
  EXPECT_NE(svg.find("<line x1=\"408.0\" y1=\"36.0\" x2=\"492.0\" y2=\"36.0\"/>"),
            std::string::npos)
      << svg;
  EXPECT_NE(svg.find("&lt;model&gt;"), std::string::npos);
  EXPECT_NE(svg.find(">no value<"), std::string::npos);
  for (const char* tick : {">0<", ">25<", ">50<", ">75<", ">100<"})
    EXPECT_NE(svg.find(tick), std::string::npos) << tick;
}

TEST(Html, AxesOutsideZeroToHundredUseRoundSteps) {
  std::string svg = BarChart("t", {Bar{"m", 6.45, -11.29, 24.19, false}});
  for (const char* tick : {">-20<", ">-10<", ">0<", ">10<", ">20<", ">30<"})
    EXPECT_NE(svg.find(tick), std::string::npos) << tick;
  EXPECT_EQ(svg.find(">40<"), std::string::npos);
}

TEST(Html, HistogramCountsEveryValueOnce) {
  std::string svg = Histogram("h", {0, 5, 15, 95, 100, 100}, 0, 100, 10);
  EXPECT_NE(svg.find("<title>2</title>"), std::string::npos);  // [0, 10): 0 and 5
  EXPECT_NE(svg.find("<title>3</title>"), std::string::npos);  // [90, 100]: 95, 100, 100
  EXPECT_NE(svg.find("<title>1</title>"), std::string::npos);  // [10, 20): 15
}

TEST(Html, PageAllowsOnlyItsOwnScript) {
  std::string page = Page("t", "<p>x</p>");
  std::string csp = ContentSecurityPolicy();
  EXPECT_NE(csp.find("default-src 'none'"), std::string::npos);
  EXPECT_NE(csp.find("script-src 'sha256-"), std::string::npos);
  EXPECT_NE(page.find("<meta http-equiv=\"Content-Security-Policy\" content=\"" + csp + "\">"),
            std::string::npos);
  // The hash in the policy is the inline script's, so browsers run it (and nothing else).
  size_t open = page.find("<script>") + 8, close = page.find("</script>");
  std::string script = page.substr(open, close - open);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_Digest(script.data(), script.size(), digest, &len, EVP_sha256(), nullptr);
  unsigned char b64[64];
  int n = EVP_EncodeBlock(b64, digest, static_cast<int>(len));
  std::string hash(reinterpret_cast<char*>(b64), static_cast<size_t>(n));
  EXPECT_NE(csp.find("'sha256-" + hash + "'"), std::string::npos) << csp;
}

}  // namespace
}  // namespace plumb::html
