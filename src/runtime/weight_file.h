// Float weights kept in a file instead of anonymous memory (docs/architecture.md "Memory").
//
// A search keeps its graph for every trial's plan, but a trial reads a float weight only while
// it quantizes it (and not at all when the PackCache has its packing). map_constants_to_file
// moves the graph's large float32 constants into one unlinked file mapped shared; the int
// lowering returns a weight's pages as soon as it has quantized them (release_file_pages), so the
// file (its page cache, reclaimable, or the disk) holds the one float copy and the process only
// the part being quantized. A page released is read back at its next touch (a minor fault while
// it is in the page cache): the contents never change.
//
//   ir::Graph g = ...;
//   runtime::map_constants_to_file(g, {out_dir});  // before the graph is shared by the trials
//   ... make_plan(g, {.mode = Mode::kInt, ...}) per trial
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "ir/graph.h"

namespace qsearch::runtime {

// Moves every float32 constant of `graph` of at least min_bytes into one unlinked file created
// in the first of `dirs` (then $TMPDIR, then /tmp) that is on a disk file system (not tmpfs or
// ramfs, where the file's pages would be memory that cannot be reclaimed) and accepts one,
// mapped shared; each constant's Tensor then lives in the mapping (same shape, same bytes). The
// graph's old buffers are freed (and dropped from the tensor block cache). Returns the bytes
// moved: 0 (graph unchanged) when no constant qualifies or no directory can take the file.
// 64 KB and up: ResNet-18's convs below 1 MB are 3.3 MB that a search's process kept resident.
int64_t map_constants_to_file(ir::Graph& graph, const std::vector<std::string>& dirs,
                              size_t min_bytes = size_t{64} << 10);

// True when [p, p + n) lies inside one mapping made by map_constants_to_file.
bool in_weight_file(const void* p, size_t n);

// Drops the whole pages of [p, p + n) from the resident set when the range lies in a mapping
// made by map_constants_to_file (the file keeps the bytes); does nothing otherwise.
void release_file_pages(const void* p, size_t n);

}  // namespace qsearch::runtime
