// Optuna's spellings of qsearch's values (storage/optuna_format.h).
#include <gtest/gtest.h>

#include <cstdlib>

#include "core/error.h"
#include "storage/optuna_format.h"

namespace qsearch::storage {
namespace {

using search::Distribution;

TEST(OptunaFormat, DistributionsAreWrittenAsOptunaWritesThem) {
  EXPECT_EQ(optuna_distribution_json(Distribution::int_range(0, 3)),
            R"({"name": "IntDistribution", "attributes": {"log": false, "step": 1, "low": 0, )"
            R"("high": 3}})");
  EXPECT_EQ(optuna_distribution_json(Distribution::float_range(0.001, 1.0, true)),
            R"({"name": "FloatDistribution", "attributes": {"step": null, "low": 0.001, )"
            R"("high": 1.0, "log": true}})");
  EXPECT_EQ(optuna_distribution_json(Distribution::categorical({"integer", "NA"})),
            R"({"name": "CategoricalDistribution", "attributes": {"choices": ["integer", "NA"]}})");
}

TEST(OptunaFormat, DistributionsRoundTripAndLegacyNamesAreRead) {
  for (const Distribution& d :
       {Distribution::int_range(0, 7), Distribution::int_range(2, 64, 2),
        Distribution::int_range(1, 1024, 1, true), Distribution::float_range(-1.5, 2.25),
        Distribution::float_range(1e-5, 0.1, true), Distribution::float_range(0, 1, false, 0.25),
        Distribution::categorical({"a", "b \"q\"", "\xc3\xa9"})}) {
    EXPECT_EQ(distribution_from_optuna_json(optuna_distribution_json(d)), d)
        << optuna_distribution_json(d);
  }
  EXPECT_EQ(
      distribution_from_optuna_json(
          R"({"name": "IntUniformDistribution", "attributes": {"low": 0, "high": 4, "step": 2}})"),
      Distribution::int_range(0, 4, 2));
  EXPECT_EQ(distribution_from_optuna_json(
                R"({"name": "LogUniformDistribution", "attributes": {"low": 0.01, "high": 1}})"),
            Distribution::float_range(0.01, 1, true));
  EXPECT_EQ(
      distribution_from_optuna_json(
          R"({"name": "DiscreteUniformDistribution", "attributes": {"low": 0, "high": 1, "q": 0.5}})"),
      Distribution::float_range(0, 1, false, 0.5));
  EXPECT_EQ(
      distribution_from_optuna_json(
          R"({"name": "CategoricalDistribution", "attributes": {"choices": [1, null, 2.5, "x"]}})"),
      Distribution::categorical({"1", "null", "2.5", "x"}));
  // JSON is UTF-8: a choice that is not is an Error, not a JSON library exception.
  EXPECT_THROW(optuna_distribution_json(Distribution::categorical({"a", "\xff\xfe"})), Error);
  EXPECT_THROW(distribution_from_optuna_json("{}"), Error);
  EXPECT_THROW(distribution_from_optuna_json(R"({"name": "Nope", "attributes": {}})"), Error);
  EXPECT_THROW(distribution_from_optuna_json(
                   R"({"name": "IntDistribution", "attributes": {"low": 3, "high": 1}})"),
               Error);
}

TEST(OptunaFormat, DatetimesAreSqlalchemyTextInLocalTimeOrUtc) {
  const int64_t ms = 1733484201655;  // 2024-12-06 11:23:21.655 UTC
  EXPECT_EQ(format_datetime(ms, TimeZone::kUtc), "2024-12-06 11:23:21.655000");
  EXPECT_EQ(parse_datetime("2024-12-06 11:23:21.655000", TimeZone::kUtc), ms);
  EXPECT_EQ(parse_datetime("2024-12-06 11:23:21.655", TimeZone::kUtc), ms);
  EXPECT_EQ(parse_datetime("2024-12-06T11:23:21.6551", TimeZone::kUtc), ms);
  EXPECT_EQ(parse_datetime("2024-12-06 11:23:21", TimeZone::kUtc), ms - 655);
  EXPECT_EQ(format_datetime(-1, TimeZone::kUtc), "1969-12-31 23:59:59.999000");
  // Local time round-trips, whatever the zone; in a zone east of UTC it reads differently.
  for (int64_t t : {ms, int64_t{1700000000123}, int64_t{1719835200000}}) {
    EXPECT_EQ(parse_datetime(format_datetime(t, TimeZone::kLocal), TimeZone::kLocal), t);
  }
  const char* old_tz = std::getenv("TZ");
  const std::string saved = old_tz ? old_tz : "";
  setenv("TZ", "Asia/Tokyo", 1);
  tzset();
  const std::string tokyo = format_datetime(ms, TimeZone::kLocal);
  const int64_t back = parse_datetime(tokyo, TimeZone::kLocal);
  if (old_tz) {
    setenv("TZ", saved.c_str(), 1);
  } else {
    unsetenv("TZ");
  }
  tzset();
  EXPECT_EQ(tokyo, "2024-12-06 20:23:21.655000");
  EXPECT_EQ(back, ms);
  for (const char* bad : {"", "yesterday", "2024-12-06", "2024-13-06 11:23:21",
                          "2024-12-06 11:23:21x", "1733484201655"}) {
    EXPECT_THROW(parse_datetime(bad, TimeZone::kUtc), Error) << bad;
  }
}

TEST(OptunaFormat, SystemAttrsAreJsonStrings) {
  EXPECT_EQ(system_attr_json("host:1"), "\"host:1\"");
  EXPECT_EQ(system_attr_json("bad \"config\"\nline 2"), R"("bad \"config\"\nline 2")");
  for (const std::string s : {"", "1", "h\xc3\xb6st:42", "bad \"config\"\nline 2", "[1, 2]"}) {
    EXPECT_EQ(system_attr_from_json(system_attr_json(s)), s);
  }
  EXPECT_EQ(system_attr_from_json("0"), "0");  // Optuna's nsga2:generation
  EXPECT_EQ(system_attr_from_json("[1, 2]"), "[1,2]");
  EXPECT_EQ(system_attr_from_json("not json"), "not json");
}

}  // namespace
}  // namespace qsearch::storage
