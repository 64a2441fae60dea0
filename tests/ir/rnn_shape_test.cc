// GRU / LSTM shape contract (ir/rnn.h): output shapes per selected output, and every mismatch of
// W, R, B or an initial state is an Error naming the node and the tensor.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/error.h"
#include "ir/rnn.h"

namespace qsearch::ir {
namespace {

Node rnn(OpKind kind, int output, int64_t directions = 1) {
  return Node{kind, "/rnn", {0, 1, 2, 3, 4}, {5}, RnnAttrs{4, directions, false, output}, "rnn"};
}

std::string error_of(const Node& n, const std::vector<const Shape*>& in) {
  try {
    rnn_output_shape(n, in);
  } catch (const Error& e) {
    return e.what();
  }
  ADD_FAILURE() << "no error";
  return "";
}

TEST(RnnShape, OutputsAndContract) {
  const Shape x{7, 3, 5}, w{2, 12, 5}, r{2, 12, 4}, b{2, 24}, h0{2, 3, 4};
  EXPECT_EQ(rnn_output_shape(rnn(OpKind::kGru, 0, 2), {&x, &w, &r, &b, &h0}), (Shape{7, 2, 3, 4}));
  EXPECT_EQ(rnn_output_shape(rnn(OpKind::kGru, 1, 2), {&x, &w, &r, nullptr, nullptr}),
            (Shape{2, 3, 4}));
  const Shape lw{1, 16, 5}, lr{1, 16, 4};
  EXPECT_EQ(rnn_output_shape(rnn(OpKind::kLstm, 2), {&x, &lw, &lr}), (Shape{1, 3, 4}));

  const Shape bad_r{2, 12, 5};
  EXPECT_NE(error_of(rnn(OpKind::kGru, 0, 2), {&x, &w, &bad_r})
                .find("node '/rnn' (GRU): R has "
                      "shape [2, 12, 5], expected "
                      "[2, 12, 4]"),
            std::string::npos);
  const Shape bad_h0{2, 4, 4};
  EXPECT_NE(error_of(rnn(OpKind::kGru, 1, 2), {&x, &w, &r, &b, &bad_h0}).find("initial_h"),
            std::string::npos);
  EXPECT_NE(error_of(rnn(OpKind::kGru, 2, 2), {&x, &w, &r}).find("has no output 2"),
            std::string::npos);
  const Shape x2{7, 15};
  EXPECT_NE(error_of(rnn(OpKind::kGru, 0, 2), {&x2, &w, &r}).find("X has shape"),
            std::string::npos);
}

}  // namespace
}  // namespace qsearch::ir
