// ir::window_out: the one output-size formula of windowed ops and transposed convolutions, on
// values computed by hand from PyTorch's documented formulas (Conv2d, MaxPool2d with ceil_mode,
// ConvTranspose2d).
#include "ir/window.h"

#include <gtest/gtest.h>

namespace qsearch::ir {
namespace {

TEST(WindowOut, FloorModeIsConvOutputSize) {
  // (7 + 1 + 1 - 1 * (3 - 1) - 1) / 2 + 1 = 6 / 2 + 1 = 4
  EXPECT_EQ(window_out(7, 3, 2, 1, 1, 1), 4);
  // dilation 2: span 4, (10 - 4 - 1) / 1 + 1 = 6
  EXPECT_EQ(window_out(10, 3, 1, 2, 0, 0), 6);
  // asymmetric pads: (5 + 0 + 2 - 1 - 1) / 3 + 1 = 5 / 3 + 1 = 2
  EXPECT_EQ(window_out(5, 2, 3, 1, 0, 2), 2);
  // stride and dilation together: span 2 * (3 - 1) = 4, (9 + 2 - 4 - 1) / 2 + 1 = 4
  EXPECT_EQ(window_out(9, 3, 2, 2, 1, 1), 4);
  // output_padding belongs to the transposed form only
  EXPECT_EQ(window_out(7, 3, 2, 1, 1, 1, WindowMode::kFloor, 1), 4);
}

TEST(WindowOut, ForwardModesGiveZeroWhenTheWindowDoesNotFit) {
  // 2 + 0 - 3 - 1 < 0: no window. A truncating (2 - 4) / 4 + 1 would give 1.
  EXPECT_EQ(window_out(2, 4, 4, 1, 0, 0), 0);
  EXPECT_EQ(window_out(2, 4, 4, 1, 0, 0, WindowMode::kCeil), 0);
  // dilation makes a 3-tap kernel span 7 rows: 6 rows do not hold it, 7 do.
  EXPECT_EQ(window_out(6, 3, 1, 3, 0, 0), 0);
  EXPECT_EQ(window_out(7, 3, 1, 3, 0, 0), 1);
}

TEST(WindowOut, CeilModeIsPoolingWithCeilMode) {
  // ceil((6 - 3) / 2) + 1 = 3 (floor mode: 2)
  EXPECT_EQ(window_out(6, 3, 2, 1, 0, 0, WindowMode::kCeil), 3);
  EXPECT_EQ(window_out(6, 3, 2, 1, 0, 0), 2);
  // ceil((5 + 2 - 2) / 2) + 1 = 4, but window 3 would start at 6 >= 5 + 1 (all in the end pad): 3
  EXPECT_EQ(window_out(5, 2, 2, 1, 1, 1, WindowMode::kCeil), 3);
  // exact division: ceil and floor agree, (8 - 2) / 2 + 1 = 4
  EXPECT_EQ(window_out(8, 2, 2, 1, 0, 0, WindowMode::kCeil), 4);
}

TEST(WindowOut, TransposedIsConvTransposeOutputSize) {
  // the classic doubling: 2 * (4 - 1) + 1 + (3 - 1) + 1 - 1 - 1 = 8
  EXPECT_EQ(window_out(4, 3, 2, 1, 1, 1, WindowMode::kTransposed, 1), 8);
  EXPECT_EQ(window_out(4, 3, 2, 1, 1, 1, WindowMode::kTransposed), 7);
  // dilation 2, output_padding 2, asymmetric pads: 3 * (3 - 1) + 2 + 2 * (3 - 1) + 1 - 0 - 1 = 12
  EXPECT_EQ(window_out(3, 3, 3, 2, 0, 1, WindowMode::kTransposed, 2), 12);
  // kernel 1, stride 1: the identity size
  EXPECT_EQ(window_out(5, 1, 1, 1, 0, 0, WindowMode::kTransposed), 5);
  // stride 1 by dilation 3 (output_padding up to 2): 1 * 1 + 2 + 3 * 1 + 1 - 0 - 0 = 7
  EXPECT_EQ(window_out(2, 2, 1, 3, 0, 0, WindowMode::kTransposed, 2), 7);
}

static_assert(window_out(4, 3, 2, 1, 1, 1, WindowMode::kTransposed, 1) == 8,
              "usable in constant expressions");

}  // namespace
}  // namespace qsearch::ir
