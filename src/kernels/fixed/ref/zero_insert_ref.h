// Reference zero insertion (the oracle of kernels/fixed/zero_insert.h): every output element
// computed on its own, which input element it reads, if any.
#pragma once

#include "kernels/fixed/zero_insert.h"

namespace qsearch::kernels::fixed::ref {

void zero_insert(const ZeroInsertParams& p, int elem_size, const void* x, void* y);

}  // namespace qsearch::kernels::fixed::ref
