// Copyright (c) uttm developers.
#include "plot.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>

namespace uttm::tool {
namespace {

using ::testing::HasSubstr;

PlotData Sample() {
  PlotRecorder rec({"vram0", "vram1", "tt", "system", "RSS <process> & \"co\""});
  for (int i = 0; i <= 40; ++i) {
    double t = i * 0.25;
    rec.Sample(t, {i * 1e6, i * 0.5e6, 20e6, i * 2e6, 30e6 + i * 1.5e6});
  }
  return rec.Data("uttm run demo: memory over time", 96.0 * 1024 * 1024);
}

bool HaveXmllint() { return std::system("command -v xmllint >/dev/null 2>&1") == 0; }

TEST(PlotTest, SvgIsValidXmlPerXmllint) {
  if (!HaveXmllint()) GTEST_SKIP() << "xmllint (libxml2-utils) is not installed";
  std::string path = ::testing::TempDir() + "/plot_test.svg";
  ASSERT_TRUE(WriteSvg(Sample(), path).ok());
  std::string cmd = "xmllint --noout '" + path + "' 2>&1";
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  // An empty chart (no samples yet) is valid too.
  PlotData empty;
  empty.title = "empty";
  ASSERT_TRUE(WriteSvg(empty, path).ok());
  EXPECT_EQ(std::system(cmd.c_str()), 0);
  std::filesystem::remove(path);
}

TEST(PlotTest, HasAxesTicksUnitsLegendAndEscapedText) {
  std::string svg = RenderSvg(Sample());
  EXPECT_THAT(svg, HasSubstr("<svg xmlns=\"http://www.w3.org/2000/svg\""));
  EXPECT_THAT(svg, HasSubstr("id=\"x-axis\""));
  EXPECT_THAT(svg, HasSubstr("id=\"y-axis\""));
  EXPECT_THAT(svg, HasSubstr("id=\"legend\""));
  EXPECT_THAT(svg, HasSubstr("time (s)"));
  EXPECT_THAT(svg, HasSubstr(" MiB</text>"));
  EXPECT_THAT(svg, HasSubstr("page limit (96 MiB)"));
  EXPECT_THAT(svg, HasSubstr("RSS &lt;process&gt; &amp; &quot;co&quot;"));
  EXPECT_THAT(svg, ::testing::Not(HasSubstr("<process>")));
  EXPECT_EQ(std::count(svg.begin(), svg.end(), '\n') > 20, true);
  // One polyline per series.
  std::size_t polylines = 0;
  for (std::size_t pos = 0; (pos = svg.find("<polyline", pos)) != std::string::npos; ++pos) {
    ++polylines;
  }
  EXPECT_EQ(polylines, 5u);
}

TEST(PlotTest, OptionalSeriesThatStayedZeroAreLeftOut) {
  PlotRecorder rec({"vram0", "RSS", "a vram", "a tt", "b vram"}, 2);
  rec.Sample(0, {0, 5, 0, 0, 0});
  rec.Sample(1, {0, 6, 3, 0, 0});
  rec.Sample(2, {0, 7, 0, 0, 0});
  PlotData d = rec.Data("t", std::nullopt);
  std::vector<std::string> names;
  for (const PlotSeries& s : d.series) names.push_back(s.name);
  // vram0 is always shown even at 0; "a vram" had one non-zero sample.
  EXPECT_EQ(names, (std::vector<std::string>{"vram0", "RSS", "a vram"}));
  EXPECT_EQ(d.series[2].points.size(), 3u);
}

TEST(PlotTest, NiceTicks) {
  EXPECT_EQ(NiceTicks(0, 10, 5, false), (std::vector<double>{0, 2, 4, 6, 8, 10}));
  std::vector<double> b = NiceTicks(0, 100.0 * 1024 * 1024, 6, true);
  ASSERT_FALSE(b.empty());
  EXPECT_EQ(b[1], 32.0 * 1024 * 1024);  // powers of two for bytes
  EXPECT_GE(b.back() + b[1], 100.0 * 1024 * 1024);
}

TEST(PlotTest, XmlEscape) {
  EXPECT_EQ(XmlEscape("a<b>&'\""), "a&lt;b&gt;&amp;&apos;&quot;");
  EXPECT_EQ(XmlEscape(std::string("x\x01y")), "xy");
}

}  // namespace
}  // namespace uttm::tool
