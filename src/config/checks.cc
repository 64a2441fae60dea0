#include "config/checks.h"

#include <fmt/format.h>

#include <cmath>

#include "core/error.h"

namespace qsearch::config {

void check_at_least(const std::string& what, int64_t value, int64_t min, int64_t max) {
  if (value < min) fail("{} must be at least {} (got {})", what, min, value);
  if (value > max) fail("{} must be at most {} (got {})", what, max, value);
}

void check_positive(const std::string& what, double value) {
  if (!std::isfinite(value) || value <= 0) {
    fail("{} must be a positive number (got {})", what, value);
  }
}

void check_finite(const std::string& what, double value) {
  if (!std::isfinite(value)) fail("{} must be a finite number (got {})", what, value);
}

}  // namespace qsearch::config
