// Copyright (c) uttm developers.
#include "plot.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "report.h"

namespace uttm::tool {
namespace {

constexpr const char* kPalette[] = {"#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd",
                                    "#8c564b", "#e377c2", "#17becf", "#bcbd22"};
constexpr const char* kLimitColor = "#d62728";

// A byte tick label: "0", "512 KiB", "1.5 GiB".
std::string ByteLabel(double v) {
  static constexpr const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  if (v <= 0) return "0";
  int u = 0;
  while (v >= 1024 && u < 4) {
    v /= 1024;
    ++u;
  }
  if (v == std::floor(v)) return fmt::format("{:.0f} {}", v, kUnits[u]);
  return fmt::format("{:.1f} {}", v, kUnits[u]);
}

std::string SecondsLabel(double v) {
  if (v == std::floor(v)) return fmt::format("{:.0f}", v);
  return fmt::format("{:g}", v);
}

}  // namespace

std::string XmlEscape(std::string_view s) {
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
        out += "&apos;";
        break;
      default:
        // Control characters are not allowed in XML 1.0; drop them.
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\t' || c == '\n') out += c;
    }
  }
  return out;
}

PlotRecorder::PlotRecorder(std::vector<std::string> series_names, std::size_t always_shown)
    : always_shown_(always_shown) {
  for (std::string& n : series_names) series_.push_back(PlotSeries{std::move(n), {}});
}

void PlotRecorder::Sample(double t_seconds, const std::vector<double>& values) {
  for (std::size_t i = 0; i < series_.size() && i < values.size(); ++i) {
    series_[i].points.emplace_back(t_seconds, values[i]);
  }
}

PlotData PlotRecorder::Data(std::string title, std::optional<double> limit_bytes) const {
  PlotData d;
  d.title = std::move(title);
  for (std::size_t i = 0; i < series_.size(); ++i) {
    const auto& pts = series_[i].points;
    if (i >= always_shown_ &&
        std::all_of(pts.begin(), pts.end(), [](const auto& p) { return p.second == 0; })) {
      continue;
    }
    d.series.push_back(series_[i]);
  }
  d.limit_bytes = limit_bytes;
  return d;
}

std::vector<double> NiceTicks(double lo, double hi, int target, bool binary) {
  if (!(hi > lo)) hi = lo + 1;
  double raw = (hi - lo) / std::max(target, 1);
  double step;
  if (binary && raw >= 1) {
    step = std::exp2(std::ceil(std::log2(raw)));
  } else {
    double mag = std::pow(10.0, std::floor(std::log10(raw)));
    double f = raw / mag;
    step = (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * mag;
  }
  std::vector<double> ticks;
  for (double t = std::ceil(lo / step) * step; t <= hi + step * 1e-9; t += step) {
    ticks.push_back(std::abs(t) < step * 1e-9 ? 0.0 : t);
  }
  return ticks;
}

std::string RenderSvg(const PlotData& data) {
  const double w = data.width, h = data.height;
  const double left = 90, right = 190, top = 50, bottom = 60;
  const double pw = w - left - right, ph = h - top - bottom;

  double t_max = 0, y_max = data.limit_bytes.value_or(0);
  for (const PlotSeries& s : data.series) {
    for (const auto& [t, v] : s.points) {
      t_max = std::max(t_max, t);
      y_max = std::max(y_max, v);
    }
  }
  if (t_max <= 0) t_max = 1;
  if (y_max <= 0) y_max = 1024 * 1024;
  std::vector<double> xticks = NiceTicks(0, t_max, 8, false);
  std::vector<double> yticks = NiceTicks(0, y_max * 1.05, 6, true);
  double x_end = std::max(t_max, xticks.empty() ? t_max : xticks.back());
  double y_end = std::max(y_max, yticks.empty() ? y_max : yticks.back());
  auto X = [&](double t) { return left + t / x_end * pw; };
  auto Y = [&](double v) { return top + ph - v / y_end * ph; };

  std::string out;
  out += "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  out += fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" version=\"1.1\" width=\"{0}\" height=\"{1}\" "
      "viewBox=\"0 0 {0} {1}\" font-family=\"sans-serif\" font-size=\"12\">\n",
      data.width, data.height);
  out += fmt::format("<title>{}</title>\n", XmlEscape(data.title));
  out += fmt::format("<rect x=\"0\" y=\"0\" width=\"{}\" height=\"{}\" fill=\"white\"/>\n",
                     data.width, data.height);
  out += fmt::format(
      "<text x=\"{:.1f}\" y=\"28\" text-anchor=\"middle\" font-size=\"16\" "
      "font-weight=\"bold\">{}</text>\n",
      left + pw / 2, XmlEscape(data.title));

  // Gridlines and ticks.
  out += "<g id=\"grid\" stroke=\"#e0e0e0\" stroke-width=\"1\">\n";
  for (double t : xticks) {
    out += fmt::format("<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\"/>\n",
                       X(t), top, top + ph);
  }
  for (double v : yticks) {
    out += fmt::format("<line x1=\"{1:.1f}\" y1=\"{0:.1f}\" x2=\"{2:.1f}\" y2=\"{0:.1f}\"/>\n",
                       Y(v), left, left + pw);
  }
  out += "</g>\n";
  out += "<g id=\"x-axis\">\n";
  out += fmt::format(
      "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"black\"/>\n", left,
      top + ph, left + pw, top + ph);
  for (double t : xticks) {
    out += fmt::format(
        "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"black\"/>\n",
        X(t), top + ph, top + ph + 5);
    out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{}</text>\n", X(t),
                       top + ph + 20, SecondsLabel(t));
  }
  out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">time (s)</text>\n",
                     left + pw / 2, h - 15);
  out += "</g>\n<g id=\"y-axis\">\n";
  out += fmt::format(
      "<line x1=\"{0:.1f}\" y1=\"{1:.1f}\" x2=\"{0:.1f}\" y2=\"{2:.1f}\" stroke=\"black\"/>\n",
      left, top, top + ph);
  for (double v : yticks) {
    out += fmt::format(
        "<line x1=\"{1:.1f}\" y1=\"{0:.1f}\" x2=\"{2:.1f}\" y2=\"{0:.1f}\" stroke=\"black\"/>\n",
        Y(v), left - 5, left);
    out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"end\">{}</text>\n", left - 8,
                       Y(v) + 4, ByteLabel(v));
  }
  out += fmt::format(
      "<text x=\"20\" y=\"{0:.1f}\" text-anchor=\"middle\" transform=\"rotate(-90 20 {0:.1f})\">"
      "memory (bytes)</text>\n",
      top + ph / 2);
  out += "</g>\n";

  // Data.
  out += "<g id=\"series\" fill=\"none\" stroke-width=\"2\">\n";
  for (std::size_t i = 0; i < data.series.size(); ++i) {
    const PlotSeries& s = data.series[i];
    if (s.points.empty()) continue;
    std::string pts;
    for (const auto& [t, v] : s.points) pts += fmt::format("{:.1f},{:.1f} ", X(t), Y(v));
    pts.pop_back();
    out += fmt::format("<polyline stroke=\"{}\" points=\"{}\"><title>{}</title></polyline>\n",
                       kPalette[i % std::size(kPalette)], pts, XmlEscape(s.name));
  }
  if (data.limit_bytes) {
    out += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
        "stroke-dasharray=\"6 4\"/>\n",
        left, Y(*data.limit_bytes), left + pw, Y(*data.limit_bytes), kLimitColor);
  }
  out += "</g>\n";

  // Legend.
  out += "<g id=\"legend\">\n";
  double ly = top + 10;
  const double lx = left + pw + 20;
  auto entry = [&](const std::string& label, const char* color, bool dashed) {
    out += fmt::format(
        "<line x1=\"{:.1f}\" y1=\"{:.1f}\" x2=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"{}\" "
        "stroke-width=\"2\"{}/>\n",
        lx, ly, lx + 24, ly, color, dashed ? " stroke-dasharray=\"6 4\"" : "");
    out += fmt::format("<text x=\"{:.1f}\" y=\"{:.1f}\">{}</text>\n", lx + 30, ly + 4,
                       XmlEscape(label));
    ly += 20;
  };
  for (std::size_t i = 0; i < data.series.size(); ++i) {
    entry(data.series[i].name, kPalette[i % std::size(kPalette)], false);
  }
  if (data.limit_bytes) {
    entry(fmt::format("{} ({})", data.limit_label, ByteLabel(*data.limit_bytes)), kLimitColor,
          true);
  }
  out += "</g>\n</svg>\n";
  return out;
}

Status WriteSvg(const PlotData& data, const std::string& path) {
  return WriteTextFile(path, RenderSvg(data));
}

}  // namespace uttm::tool
