// A tiny program built against the installed uttm package: it must compile with only the
// installed headers and link with only the installed library.
#include <uttm/fault_injection.h>
#include <uttm/stats.h>
#include <uttm/status.h>
#include <uttm/units.h>

#include <cstdio>

int main() {
  uttm::Stats stats;
  stats.Add(uttm::Stat::kPagesBackedUp, 2);
  uttm::Status s = uttm::FaultInjection::Configure("no.such.point");
  bool ok = stats.Get(uttm::Stat::kPagesBackedUp) == 2 && s.code() == uttm::Errc::kInvalid &&
            uttm::PageCount(2).in_bytes() == uttm::Bytes(8192);
  std::printf("%s\n", ok ? "uttm consumer ok" : "uttm consumer FAILED");
  return ok ? 0 : 1;
}
