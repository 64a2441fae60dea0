#include "quant/node_config.h"

#include <gtest/gtest.h>

#include <string>

#include "core/error.h"

namespace qsearch::quant {
namespace {

MaseQuantConfig linear_config() {
  return {.name = "integer",
          .entries = {{"data_in_width", 8},
                      {"data_in_frac_width", 4},
                      {"weight_width", 4},
                      {"weight_frac_width", std::nullopt},
                      {"bias_width", 6},
                      {"bias_frac_width", 3}}};
}

std::string error_of(std::string_view op, const MaseQuantConfig& c) {
  try {
    make_node_quant_config(op, c);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(NodeConfig, LinearIntegerConfig) {
  const NodeQuantConfig q = make_node_quant_config("linear", linear_config());
  EXPECT_TRUE(q.quantized);
  EXPECT_FALSE(q.bypass);
  EXPECT_EQ(q.data_in, (FixedFormat{8, 4, true}));
  EXPECT_EQ(q.weight, (FixedFormat{4, 2, true}));  // "NA" frac -> 4 // 2
  EXPECT_EQ(q.bias, (FixedFormat{6, 3, true}));
  EXPECT_FALSE(q.data_out.has_value());
  EXPECT_EQ(q.rounding, Rounding::kHalfToEven);
}

TEST(NodeConfig, FixedIsAnAliasAndMissingFracIsHalfWidth) {
  MaseQuantConfig c{.name = "fixed", .entries = {{"data_in_width", 7}, {"weight_width", 9}}};
  const NodeQuantConfig q = make_node_quant_config("conv2d", c);
  EXPECT_TRUE(q.quantized);
  EXPECT_EQ(q.data_in, (FixedFormat{7, 3, true}));
  EXPECT_EQ(q.weight, (FixedFormat{9, 4, true}));
  EXPECT_FALSE(q.bias.has_value());
}

TEST(NodeConfig, NaOrAbsentNameLeavesTheNodeUnquantized) {
  EXPECT_EQ(make_node_quant_config("linear", {.name = "NA", .bypass = false, .entries = {}}),
            NodeQuantConfig{});
  EXPECT_EQ(make_node_quant_config("linear", {}), NodeQuantConfig{});
}

TEST(NodeConfig, ReluInputIsUnsigned) {
  MaseQuantConfig c{.name = "integer",
                    .entries = {{"data_in_width", 8}, {"data_in_frac_width", 2}}};
  EXPECT_EQ(make_node_quant_config("relu", c).data_in, (FixedFormat{8, 2, false}));
  EXPECT_EQ(make_node_quant_config("add", c).data_in, (FixedFormat{8, 2, true}));
}

TEST(NodeConfig, KeysOfOtherOpsAreIgnoredLikeMase) {
  // A default config with weight/bias entries also applies to relu: MASE drops what relu
  // does not read.
  const NodeQuantConfig q = make_node_quant_config("relu", linear_config());
  EXPECT_TRUE(q.data_in.has_value());
  EXPECT_FALSE(q.weight.has_value());
  EXPECT_FALSE(q.bias.has_value());
  // matmul has no optional bias entry.
  EXPECT_FALSE(make_node_quant_config("matmul", linear_config()).bias.has_value());
}

TEST(NodeConfig, DataOutOnlyWhereMaseReadsIt) {
  MaseQuantConfig c = linear_config();
  c.entries.push_back({"data_out_width", 10});
  EXPECT_EQ(make_node_quant_config("linear", c).data_out, (FixedFormat{10, 5, true}));
  EXPECT_FALSE(make_node_quant_config("conv1d", c).data_out.has_value());
}

TEST(NodeConfig, Bypass) {
  MaseQuantConfig c = linear_config();
  c.bypass = true;
  const NodeQuantConfig q = make_node_quant_config("linear", c);
  EXPECT_FALSE(q.quantized);
  EXPECT_TRUE(q.bypass);
  EXPECT_EQ(q.weight, (FixedFormat{4, 2, true}));  // still known (average_bitwidth uses it)
}

TEST(NodeConfig, ErrorsNameTheKeyAndTheFix) {
  MaseQuantConfig c = linear_config();
  c.entries[2].value = 33;
  std::string e = error_of("linear", c);
  EXPECT_NE(e.find("'weight_width' = 33"), std::string::npos) << e;
  EXPECT_NE(e.find("1..32"), std::string::npos) << e;

  c = linear_config();
  c.entries[0].value = 0;
  EXPECT_NE(error_of("linear", c).find("'data_in_width' = 0"), std::string::npos);

  c = linear_config();
  c.entries[1].value = 100;
  EXPECT_NE(error_of("linear", c).find("'data_in_frac_width' = 100"), std::string::npos);

  c = linear_config();
  c.entries.erase(c.entries.begin() + 2);  // weight_width
  e = error_of("linear", c);
  EXPECT_NE(e.find("missing key 'weight_width'"), std::string::npos) << e;

  c = linear_config();
  c.entries[0].value = std::nullopt;  // data_in_width = "NA"
  EXPECT_NE(error_of("linear", c).find("'data_in_width' is \"NA\""), std::string::npos);

  c = linear_config();
  c.entries.push_back({"weigth_width", 4});
  e = error_of("linear", c);
  EXPECT_NE(e.find("unknown key 'weigth_width'"), std::string::npos) << e;
  EXPECT_NE(e.find("did you mean 'weight_width'"), std::string::npos) << e;

  c = linear_config();
  c.entries.push_back({"data_in_width", 4});
  EXPECT_NE(error_of("linear", c).find("given twice"), std::string::npos);

  MaseQuantConfig frac_only{
      .name = "integer",
      .entries = {{"data_in_width", 8}, {"weight_width", 8}, {"bias_frac_width", 2}}};
  EXPECT_NE(error_of("linear", frac_only).find("missing key 'bias_width'"), std::string::npos);

  c = linear_config();
  c.name = "block_fp";
  EXPECT_NE(error_of("linear", c).find("not supported yet"), std::string::npos);
  c.name = "integr";
  EXPECT_NE(error_of("linear", c).find("unknown arithmetic name 'integr'"), std::string::npos);

  EXPECT_NE(error_of("log_softmax", linear_config()).find("op 'log_softmax' is not quantizable"),
            std::string::npos);
}

TEST(NodeConfig, OpEntriesTableIsMases) {
  using V = std::vector<std::string_view>;
  EXPECT_EQ(required_fields("linear"),
            (V{"data_in_width", "data_in_frac_width", "weight_width", "weight_frac_width"}));
  EXPECT_EQ(optional_fields("linear"), (V{"bias_width", "bias_frac_width", "data_out_width",
                                          "data_out_frac_width", "bypass", "additional_layers"}));
  EXPECT_EQ(required_fields("relu"), (V{"data_in_width", "data_in_frac_width"}));
  EXPECT_EQ(optional_fields("relu"), (V{"bypass"}));
  EXPECT_EQ(optional_fields("matmul"), V{});
  EXPECT_EQ(optional_fields("conv1d"), (V{"bias_width", "bias_frac_width", "bypass"}));
  EXPECT_EQ(optional_fields("conv2d"), (V{"bias_width", "bias_frac_width", "data_out_width",
                                          "data_out_frac_width", "bypass"}));
  EXPECT_EQ(required_fields("batch_norm2d"), (V{"data_in_width", "data_in_frac_width"}));
  EXPECT_EQ(optional_fields("batch_norm2d"),
            (V{"weight_width", "weight_frac_width", "bias_width", "bias_frac_width", "bypass"}));
  EXPECT_TRUE(is_quantizable_op("rms_norm"));
  EXPECT_FALSE(is_quantizable_op("batch_norm1d"));  // MASE cannot quantize it either
  // MASE's 20 + qsearch's opt-in gru, lstm, softmax (issue 11) + conv3d and convtranspose3d
  // (issue 14: MASE's conv2d / convtranspose2d generalized)
  EXPECT_EQ(quantizable_ops().size(), 25u);
  EXPECT_EQ(required_fields("conv3d"), required_fields("conv2d"));
  EXPECT_EQ(optional_fields("conv3d"), optional_fields("conv2d"));
  EXPECT_EQ(required_fields("convtranspose3d"), required_fields("convtranspose2d"));
  EXPECT_EQ(optional_fields("convtranspose3d"), optional_fields("convtranspose2d"));
  EXPECT_EQ(required_fields("gru"),
            (V{"data_in_width", "data_in_frac_width", "weight_width", "weight_frac_width"}));
  EXPECT_EQ(optional_fields("lstm"), (V{"bias_width", "bias_frac_width", "bypass"}));
  EXPECT_EQ(required_fields("softmax"), (V{"data_in_width", "data_in_frac_width"}));
  // qsearch's data_out on layer_norm / gelu / softmax (issue 11: their outputs quantized too);
  // the other one-input ops keep MASE's entries.
  for (const char* op : {"softmax", "layer_norm", "gelu"}) {
    EXPECT_EQ(optional_fields(op), (V{"data_out_width", "data_out_frac_width", "bypass"})) << op;
  }
  EXPECT_EQ(optional_fields("tanh"), (V{"bypass"}));
  EXPECT_EQ(optional_fields("rms_norm"), (V{"bypass"}));
  EXPECT_THROW(required_fields("log_softmax"), Error);
  EXPECT_EQ(nearest_field("data_in_widht"), "data_in_width");
  EXPECT_EQ(nearest_field("completely_unrelated_key"), "");
}

}  // namespace
}  // namespace qsearch::quant
