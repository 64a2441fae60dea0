#include "kernels/fixed/isa.h"

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <string>

namespace qsearch::kernels::fixed {

namespace {

Isa detect() {
#if defined(__x86_64__)
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw")) {
    return __builtin_cpu_supports("avx512vnni") ? Isa::kAvx512Vnni : Isa::kAvx512Bw;
  }
  if (__builtin_cpu_supports("avx2")) return Isa::kAvx2;
#endif
  return Isa::kScalar;
}

Isa initial_cap() {
  const char* env = std::getenv("QSEARCH_ISA");
  if (env == nullptr) return Isa::kAvx512Vnni;
  const std::string v = env;
  for (Isa i : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512Bw, Isa::kAvx512Vnni}) {
    if (v == isa_name(i)) return i;
  }
  return Isa::kAvx512Vnni;  // unknown value: no cap
}

std::atomic<Isa>& cap() {
  static std::atomic<Isa> c{initial_cap()};
  return c;
}

}  // namespace

std::string_view isa_name(Isa isa) {
  switch (isa) {
    case Isa::kScalar:
      return "scalar";
    case Isa::kAvx2:
      return "avx2";
    case Isa::kAvx512Bw:
      return "avx512bw";
    case Isa::kAvx512Vnni:
      return "avx512vnni";
  }
  return "?";
}

Isa best_isa() {
  static const Isa best = detect();
  return best;
}

bool cpu_supports(Isa isa) { return isa <= best_isa(); }

Isa max_isa() { return std::min(best_isa(), cap().load(std::memory_order_relaxed)); }

Isa set_max_isa(Isa c) { return cap().exchange(c); }

std::vector<Isa> supported_isas() {
  std::vector<Isa> v;
  for (Isa i : {Isa::kScalar, Isa::kAvx2, Isa::kAvx512Bw, Isa::kAvx512Vnni}) {
    if (cpu_supports(i)) v.push_back(i);
  }
  return v;
}

}  // namespace qsearch::kernels::fixed
