// The float step of ir Im2Col3d (issue 14: a 3-D convolution is Im2Col3d -> Conv (1, kW) ->
// Reshape; kernels/conv3d.h). The fake and int engines run it in float like the other
// unquantized data movement: the Conv after it quantizes the gathered values, which are the
// input's values and zeros (q(0) = 0), so it sees exactly the quantized input's taps.
#pragma once

#include <string>

#include "ir/graph.h"
#include "kernels/conv3d.h"
#include "runtime/step.h"

namespace qsearch::runtime {

class PlanBuilder;

void lower_im2col3d(PlanBuilder& b, const ir::Node& n);

// The kernel's parameters for an NCDHW input of shape x (x[0] the batch); training uses them too.
kernels::Im2Col3dParams im2col3d_params(const ir::Im2Col3dAttrs& a, const Shape& x);

class Im2Col3dStep : public Step {
 public:
  void run(const RunContext& ctx) const override;
  std::string describe() const override;
  kernels::Im2Col3dParams params;  // batch filled per run
};

}  // namespace qsearch::runtime
