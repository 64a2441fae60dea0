// The tensor block cache (tensor.cc): freed tensor buffers of 64 KiB and more are kept, up to
// 256 MB, for new tensors of the same size.
#pragma once

#include <cstddef>

namespace qsearch {

// Frees every cached block and returns their bytes: for a caller that drops buffers nothing
// will reuse (`qsearch eval` dropping the graph once the plan holds the packed weights), which
// would otherwise stay resident.
size_t release_cached_tensor_blocks();

}  // namespace qsearch
