// Keys that MASE's configs use but qsearch refuses get a reason, not only "unknown key".
#include <gtest/gtest.h>

#include <string>

#include "core/error.h"
#include "quant/node_config.h"

namespace qsearch::quant {
namespace {

std::string error_with(const std::string& key) {
  MaseQuantConfig c{.name = "integer",
                    .entries = {{"data_in_width", 8},
                                {"data_in_frac_width", 4},
                                {"weight_width", 8},
                                {"weight_frac_width", 4},
                                {key, 1}}};
  try {
    make_node_quant_config("linear", c);
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(MaseFieldHint, FloorSaysWhatMaseMeantAndWhatQsearchDoes) {
  const std::string e = error_with("floor");
  EXPECT_NE(e.find("unknown key 'floor' in the linear quantization config:"), std::string::npos)
      << e;
  EXPECT_NE(e.find("MASE's floor-rounding switch"), std::string::npos) << e;
  EXPECT_NE(e.find("rounds half to even"), std::string::npos) << e;
  EXPECT_NE(e.find("remove the key"), std::string::npos) << e;
}

TEST(MaseFieldHint, KeysOfMasesOtherArithmeticsNameThem) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"weight_exponent_width", "minifloat_ieee"},
      {"data_in_exponent_bias", "minifloat_denorm"},
      {"weight_exponent_bias_width", "block_minifloat"},
      {"data_in_block_size", "block_fp"},
      {"weight_stochastic", "binary"},
      {"weight_bipolar", "binary"},
      {"data_in_residual_sign", "binary_residual"},
      {"weight_levels", "binary_residual"},
      {"weight_scaling_factor", "ternary"},
      {"weight_mean", "ternary"},
      {"weight_median", "ternary"},
      {"weight_max", "ternary"},
      {"weight_parallelism", "mxint_hardware"},
  };
  for (const auto& [key, arithmetic] : cases) {
    const std::string e = error_with(key);
    EXPECT_NE(e.find("'" + key + "' is a key of MASE's"), std::string::npos) << e;
    EXPECT_NE(e.find(arithmetic), std::string::npos) << key << ": " << e;
    EXPECT_NE(e.find("name = \"integer\""), std::string::npos) << e;
  }
  // Other unknown keys keep the nearest-key suggestion.
  EXPECT_EQ(mase_field_hint("weight_widht"), "");
  EXPECT_NE(error_with("weight_widht").find("did you mean 'weight_width'?"), std::string::npos);
  for (std::string_view known : known_fields()) EXPECT_EQ(mase_field_hint(known), "") << known;
}

}  // namespace
}  // namespace qsearch::quant
