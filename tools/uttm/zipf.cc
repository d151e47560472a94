// Copyright (c) uttm developers.
#include "zipf.h"

#include <algorithm>
#include <cmath>

namespace uttm::tool {
namespace {

// log1p(t)/t, continuous at t = 0.
double Log1pOverT(double t) { return std::abs(t) > 1e-8 ? std::log1p(t) / t : 1 - t / 2; }
// expm1(t)/t, continuous at t = 0.
double Expm1OverT(double t) { return std::abs(t) > 1e-8 ? std::expm1(t) / t : 1 + t / 2; }

}  // namespace

ZipfSampler::ZipfSampler(std::uint64_t n, double s) : n_(std::max<std::uint64_t>(n, 1)), s_(s) {
  h_integral_x1_ = H(1.5) - 1.0;
  h_integral_n_ = H(static_cast<double>(n_) + 0.5);
  s_limit_ = 2.0 - HInv(H(2.5) - h(2.0));
}

double ZipfSampler::h(double x) const { return std::exp(-s_ * std::log(x)); }

// H(x) = (x^(1-s) - 1) / (1 - s), which tends to log(x) as s -> 1; written with expm1 so that it
// stays accurate near s = 1.
double ZipfSampler::H(double x) const {
  double log_x = std::log(x);
  return Expm1OverT((1.0 - s_) * log_x) * log_x;
}

double ZipfSampler::HInv(double x) const {
  double t = x * (1.0 - s_);
  t = std::max(t, -1.0);
  return std::exp(Log1pOverT(t) * x);
}

std::uint64_t ZipfSampler::Sample(Rng& rng) const {
  for (;;) {
    // u is uniform between H(n + 1/2) and H(3/2) - h(1); the area left of H(3/2) belongs to k=1.
    double u = h_integral_n_ + rng.Uniform() * (h_integral_x1_ - h_integral_n_);
    double x = HInv(u);
    double kd = std::floor(x + 0.5);
    kd = std::clamp(kd, 1.0, static_cast<double>(n_));
    // Accept at once when x is close to the integer (the hat equals the pmf there), else test.
    if (kd - x <= s_limit_ || u >= H(kd + 0.5) - h(kd)) return static_cast<std::uint64_t>(kd);
  }
}

}  // namespace uttm::tool
