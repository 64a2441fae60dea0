// The output size of one dim of a windowed op (Conv, pooling, Im2Col3d) or of a transposed
// convolution (ConvTranspose, a transposed Im2Col3d): the one formula shape inference, the
// importers and the runtime's lowering all use, so that they cannot drift apart.
#pragma once

#include <cstdint>

namespace qsearch::ir {

enum class WindowMode : uint8_t {
  kFloor,       // Conv / pooling: floor((in + pads - span - 1) / stride) + 1
  kCeil,        // pooling with ceil_mode (the last window starts inside the input or begin pad)
  kTransposed,  // ConvTranspose: stride * (in - 1) + output_padding + span + 1 - pads
};

// span = dilation * (kernel - 1). Forward modes return 0 when the window does not fit the padded
// input; kTransposed returns the formula's value as is (callers reject a result below 1).
// output_padding is for kTransposed only (ignored otherwise).
constexpr int64_t window_out(int64_t in, int64_t kernel, int64_t stride, int64_t dilation,
                             int64_t pad_begin, int64_t pad_end,
                             WindowMode mode = WindowMode::kFloor, int64_t output_padding = 0) {
  const int64_t span = dilation * (kernel - 1);
  if (mode == WindowMode::kTransposed) {
    return stride * (in - 1) + output_padding + span + 1 - pad_begin - pad_end;
  }
  const int64_t room = in + pad_begin + pad_end - span - 1;
  if (room < 0) return 0;
  if (mode == WindowMode::kFloor) return room / stride + 1;
  int64_t out = (room + stride - 1) / stride + 1;
  // PyTorch/ONNX: the last window must start inside the input or the begin padding.
  if ((out - 1) * stride >= in + pad_begin) --out;
  return out;
}

}  // namespace qsearch::ir
