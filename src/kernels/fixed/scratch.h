// Internal to kernels/fixed: per-thread scratch buffers, so that kernels allocate only the first
// time a thread needs a given size (the executor loop stays allocation-free).
#pragma once

#include <cstddef>

namespace qsearch::kernels::fixed {

enum class ScratchSlot { kGemmA, kGemmB, kGemmSparse, kConvColumns, kConvOutput, kCount };

// A 64-byte aligned buffer of at least `bytes`, owned by the calling thread and reused by the
// next call with the same slot (contents are not preserved when it grows).
void* scratch(ScratchSlot slot, size_t bytes);

}  // namespace qsearch::kernels::fixed
