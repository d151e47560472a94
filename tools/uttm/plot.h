// Copyright (c) uttm developers.
//
// plot.h: an SVG line chart of memory over time (per-domain usage, RSS, the page limit).
//
// The chart has a title, an x axis in seconds and a y axis in bytes (ticks labelled in B, KiB,
// MiB or GiB, whichever reads best), gridlines, one polyline per series, an optional dashed
// horizontal limit line and a legend. Text is XML-escaped; the output is a standalone SVG 1.1
// document (valid XML).
//
// Thread-safety: RenderSvg/WriteSvg/NiceTicks are pure; a PlotRecorder is used by one thread
// (the engine's sampler).
#ifndef UTTM_TOOLS_UTTM_PLOT_H_
#define UTTM_TOOLS_UTTM_PLOT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "uttm/status.h"

namespace uttm::tool {

struct PlotSeries {
  std::string name;                               // legend label
  std::vector<std::pair<double, double>> points;  // (seconds, bytes), in time order
};

struct PlotData {
  std::string title;
  std::vector<PlotSeries> series;
  std::optional<double> limit_bytes;  // dashed horizontal line
  std::string limit_label = "page limit";
  int width = 960;
  int height = 540;
};

// Records samples of several series at common times; convenient for the engine's sampler.
class PlotRecorder {
 public:
  // Series from index `always_shown` on are optional: left out of Data() when every sample of
  // theirs is 0 (a client that never used a domain).
  explicit PlotRecorder(std::vector<std::string> series_names, std::size_t always_shown = SIZE_MAX);
  // One sample per series (values.size() == number of series; extra values are ignored).
  void Sample(double t_seconds, const std::vector<double>& values);
  PlotData Data(std::string title, std::optional<double> limit_bytes) const;

 private:
  std::vector<PlotSeries> series_;
  std::size_t always_shown_;
};

// "Nice" tick values covering [lo, hi] (about `target` of them, steps of 1, 2 or 5 x 10^k, or for
// bytes of 1, 2, 4, 8... x 2^k when `binary`).
std::vector<double> NiceTicks(double lo, double hi, int target, bool binary);

std::string RenderSvg(const PlotData& data);
// Writes RenderSvg to `path`. Errors: kIo naming the path.
Status WriteSvg(const PlotData& data, const std::string& path);

// Escapes &, <, >, " and ' for XML text and attributes.
std::string XmlEscape(std::string_view s);

}  // namespace uttm::tool

#endif  // UTTM_TOOLS_UTTM_PLOT_H_
