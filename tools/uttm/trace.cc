// Copyright (c) uttm developers.
#include "trace.h"

#include <unistd.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "report.h"

namespace uttm::tool {

TraceWriter::TraceWriter(std::size_t max_events)
    : start_(std::chrono::steady_clock::now()), max_events_(max_events) {}

double TraceWriter::NowUs() const {
  return std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - start_)
      .count();
}

void TraceWriter::Add(Event e) {
  MutexLock lock(&mu_);
  if (events_.size() >= max_events_) {
    ++dropped_;
    return;
  }
  events_.push_back(std::move(e));
}

void TraceWriter::Complete(std::string_view name, std::string_view cat, std::uint32_t tid,
                           double ts_us, double dur_us, Args args) {
  Add(Event{'X', std::string(name), std::string(cat), tid, ts_us, std::max(dur_us, 0.0),
            std::move(args)});
}

void TraceWriter::Counter(std::string_view name, double ts_us, Args series) {
  Add(Event{'C', std::string(name), "counter", 0, ts_us, 0, std::move(series)});
}

void TraceWriter::ThreadName(std::uint32_t tid, std::string_view name) {
  Add(Event{'M', std::string(name), "", tid, 0, 0, {}});
}

std::size_t TraceWriter::size() const {
  MutexLock lock(&mu_);
  return events_.size();
}

std::uint64_t TraceWriter::dropped() const {
  MutexLock lock(&mu_);
  return dropped_;
}

std::string TraceWriter::ToJson() const {
  std::vector<Event> events;
  std::uint64_t dropped = 0;
  {
    MutexLock lock(&mu_);
    events = events_;
    dropped = dropped_;
  }
  std::stable_sort(events.begin(), events.end(),
                   [](const Event& a, const Event& b) { return a.ts < b.ts; });
  const int pid = static_cast<int>(getpid());
  nlohmann::json list = nlohmann::json::array();
  for (const Event& e : events) {
    nlohmann::json j;
    if (e.ph == 'M') {
      j = {{"ph", "M"}, {"name", "thread_name"},     {"pid", pid}, {"tid", e.tid},
           {"ts", 0},   {"args", {{"name", e.name}}}};
    } else {
      j = {{"ph", std::string(1, e.ph)},
           {"name", e.name},
           {"pid", pid},
           {"tid", e.tid},
           {"ts", e.ts}};
      if (!e.cat.empty()) j["cat"] = e.cat;
      if (e.ph == 'X') j["dur"] = e.dur;
      nlohmann::json args = nlohmann::json::object();
      for (const auto& [key, value] : e.args) args[key] = value;
      j["args"] = args;
    }
    list.push_back(std::move(j));
  }
  nlohmann::json doc = {{"traceEvents", list},
                        {"displayTimeUnit", "ms"},
                        {"otherData", {{"tool", "uttm"}, {"dropped_events", dropped}}}};
  return doc.dump() + "\n";
}

Status TraceWriter::WriteFile(const std::string& path) const {
  return WriteTextFile(path, ToJson());
}

}  // namespace uttm::tool
