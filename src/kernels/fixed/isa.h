// Instruction-set levels of the integer kernels and the run-time choice between them.
//
// The build baseline is x86-64-v3 (AVX2). The wider paths are compiled with per-function target
// attributes and chosen at run time with __builtin_cpu_supports, so one binary runs everywhere and
// uses VNNI where the CPU has it. Tests force each lower path to check it against the reference:
//
//   ScopedMaxIsa cap(Isa::kAvx2);               // kernels packed/run now use AVX2 at most
//   PackedWeights w = pack_weights(spec);       // records Isa::kAvx2 (or lower)
//
// The cap is process-wide (an atomic), also settable with $QSEARCH_ISA=scalar|avx2|avx512bw|
// avx512vnni read once at start-up; it can only lower the level, never raise it above the CPU's.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace qsearch::kernels::fixed {

enum class Isa : uint8_t {
  kScalar,      // portable C++ (what the compiler makes of it)
  kAvx2,        // 256-bit, vpmaddwd on int16 pairs
  kAvx512Bw,    // 512-bit, vpmaddwd on int16 pairs
  kAvx512Vnni,  // 512-bit, vpdpbusd on u8 x s8 quads (AVX-512 VNNI + BW)
};

std::string_view isa_name(Isa isa);  // "scalar", "avx2", "avx512bw", "avx512vnni"

// True when this CPU (and this build) can run `isa`.
bool cpu_supports(Isa isa);
// The best level this CPU supports.
Isa best_isa();
// min(best_isa(), cap): the level kernels use now.
Isa max_isa();
// Sets the cap; returns the previous cap.
Isa set_max_isa(Isa cap);
// Every level this CPU supports, lowest first (for tests and benchmarks).
std::vector<Isa> supported_isas();

// RAII cap for tests and benchmarks.
class ScopedMaxIsa {
 public:
  explicit ScopedMaxIsa(Isa cap) : previous_(set_max_isa(cap)) {}
  ~ScopedMaxIsa() { set_max_isa(previous_); }
  ScopedMaxIsa(const ScopedMaxIsa&) = delete;
  ScopedMaxIsa& operator=(const ScopedMaxIsa&) = delete;

 private:
  Isa previous_;
};

}  // namespace qsearch::kernels::fixed
