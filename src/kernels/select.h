// Kernels of the sequence-model ops on tensors of any element type (issue 11): comparisons and
// masks (Equal, Not, And, Where), broadcasting copies (Expand), dtype conversion (Cast) and the
// lookup of rows by run-time indices (Gather of an embedding table by token ids).
//
// None of them rounds: each output element is a copy, a comparison or one conversion, so the
// fast kernels here and the reference ones (kernels/ref/select.h) must agree bit for bit
// (tests/kernels/select_test.cc). The fast ones walk the output a row at a time (the last dim)
// with the operands' broadcast strides and a contiguous-copy path; the reference ones compute
// every element's operand offsets from its full index.
//
//   kernels::SelectParams p{.rank = 2, .shape = {2, 3}};
//   p.stride[0] = {3, 1};  p.stride[1] = {0, 1};       // operand 0 [2, 3], operand 1 [3]
//   kernels::equal(DType::kInt64, p, ids, pad, mask);  // mask[i, j] = ids[i, j] == pad[j]
#pragma once

#include <cstddef>
#include <cstdint>

#include "core/dtype.h"
#include "kernels/params.h"

namespace qsearch::kernels {

// A dense output of `shape` (rank `rank`) and up to three operands read with `stride[k]`
// (elements; 0 where operand k is broadcast), numpy's rules.
struct SelectParams {
  int rank = 0;
  Dims shape{};
  std::array<Dims, 3> stride{};
};

// y = (a == b) as 0 / 1, a and b of dtype t (float32 compares as IEEE: NaN != NaN).
void equal(DType t, const SelectParams& p, const void* a, const void* b, uint8_t* y);
// y = a && b (operands 0 / 1).
void logical_and(const SelectParams& p, const uint8_t* a, const uint8_t* b, uint8_t* y);
// y = cond ? a : b (cond: operand 0, a: 1, b: 2), elements of `elem` bytes.
void where(size_t elem, const SelectParams& p, const uint8_t* cond, const void* a, const void* b,
           void* y);
// y = x broadcast to p.shape (operand 0), elements of `elem` bytes.
void expand(size_t elem, const SelectParams& p, const void* x, void* y);

// Gather rows of x, viewed as [outer, n, inner], at run-time indices:
//   y[o, j, :] = x[o, idx[j], :]   for j < count, idx[j] in [-n, n) (negative counts from the end)
// An index outside [-n, n) (a token id beyond the table) cannot stop a run: its row is NaN for
// float32 data and 0 otherwise, so a bad id shows as NaN logits instead of reading out of bounds.
struct GatherParams {
  int64_t outer = 1, n = 0, inner = 1, count = 0;
  size_t elem = 4;
  DType data = DType::kFloat32;
  DType index = DType::kInt64;  // kInt64 or kInt32
};
void gather(const GatherParams& p, const void* x, const void* idx, void* y);

}  // namespace qsearch::kernels
