// Reference (oracle) versions of kernels/select.h, element by element from each output element's
// full index, plus the elementwise ones that have no fast twin: Cast and Not (one pass over
// dense memory; a conversion per element is all there is to do).
#pragma once

#include <cstddef>
#include <cstdint>

#include "kernels/select.h"

namespace qsearch::kernels::ref {

void equal(DType t, const SelectParams& p, const void* a, const void* b, uint8_t* y);
void logical_and(const SelectParams& p, const uint8_t* a, const uint8_t* b, uint8_t* y);
void where(size_t elem, const SelectParams& p, const uint8_t* cond, const void* a, const void* b,
           void* y);
void expand(size_t elem, const SelectParams& p, const void* x, void* y);
void gather(const GatherParams& p, const void* x, const void* idx, void* y);

// y[i] = x[i] converted, for i < n, between float32, int64, int32 and bool (uint8 0 / 1):
// to bool is x != 0; float to an integer truncates toward zero (ONNX), saturating at the
// integer's range, NaN to 0; int64 to int32 keeps the low 32 bits (as numpy / PyTorch).
void cast(DType from, DType to, const void* x, void* y, int64_t n);
// y[i] = !x[i].
void logical_not(const uint8_t* x, uint8_t* y, int64_t n);

}  // namespace qsearch::kernels::ref
