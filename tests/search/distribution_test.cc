#include "search/distribution.h"

#include <gtest/gtest.h>

#include "core/error.h"

namespace qsearch::search {
namespace {

TEST(Distribution, IntRangeValues) {
  const Distribution d = Distribution::int_range(0, 10, 3);
  EXPECT_EQ(d.high, 9);  // lowered onto the step grid, as Optuna does
  EXPECT_EQ(d.cardinality(), 4);
  for (int64_t k = 0; k < 4; ++k) {
    EXPECT_EQ(d.value_at(k), 3.0 * k);
    EXPECT_EQ(d.index_of(3.0 * k), k);
    EXPECT_TRUE(d.contains(3.0 * k));
  }
  EXPECT_FALSE(d.contains(1));
  EXPECT_FALSE(d.contains(10));
  EXPECT_FALSE(d.contains(-3));
  EXPECT_FALSE(d.contains(3.5));
  EXPECT_FALSE(d.single());
  EXPECT_TRUE(Distribution::int_range(5, 5).single());
}

TEST(Distribution, FloatRanges) {
  const Distribution c = Distribution::float_range(-1, 1);
  EXPECT_EQ(c.cardinality(), -1);
  EXPECT_TRUE(c.contains(0.3));
  EXPECT_FALSE(c.contains(1.5));
  EXPECT_EQ(c.index_of(0.3), -1);
  const Distribution s = Distribution::float_range(0, 1, false, 0.25);
  EXPECT_EQ(s.cardinality(), 5);
  EXPECT_TRUE(s.contains(0.75));
  EXPECT_FALSE(s.contains(0.8));
  EXPECT_EQ(s.value_at(4), 1.0);
  EXPECT_EQ(s.index_of(0.5), 2);
  const Distribution odd = Distribution::float_range(0, 1, false, 0.3);
  EXPECT_NEAR(odd.high, 0.9, 1e-12);
  EXPECT_EQ(odd.cardinality(), 4);
  EXPECT_TRUE(Distribution::float_range(1e-3, 1, true).contains(0.01));
}

TEST(Distribution, Categorical) {
  const Distribution d = Distribution::categorical({"integer", "NA", "fixed"});
  EXPECT_EQ(d.cardinality(), 3);
  EXPECT_TRUE(d.contains(2));
  EXPECT_FALSE(d.contains(3));
  EXPECT_FALSE(d.contains(0.5));
  EXPECT_EQ(d.value_at(1), 1.0);
}

TEST(Distribution, InvalidArgumentsThrow) {
  EXPECT_THROW(Distribution::int_range(3, 1), Error);
  EXPECT_THROW(Distribution::int_range(0, 4, 0), Error);
  EXPECT_THROW(Distribution::int_range(0, 4, 1, true), Error);
  EXPECT_THROW(Distribution::int_range(1, 8, 2, true), Error);
  EXPECT_THROW(Distribution::float_range(1, 0), Error);
  EXPECT_THROW(Distribution::float_range(0, 1, true), Error);
  EXPECT_THROW(Distribution::float_range(0.1, 1, true, 0.1), Error);
  EXPECT_THROW(Distribution::float_range(0, 1, false, -1), Error);
  EXPECT_THROW(Distribution::categorical({}), Error);
  Distribution bad;
  bad.kind = Distribution::Kind::kInt;
  bad.low = 0.5;
  bad.high = 2;
  EXPECT_THROW(bad.validate(), Error);
}

TEST(Distribution, JsonRoundTripAndStableText) {
  const Distribution i = Distribution::int_range(0, 2);
  EXPECT_EQ(i.to_json(), R"({"kind":"int","low":0,"high":2,"step":1,"log":false})");
  const Distribution c = Distribution::categorical({"integer", "NA"});
  EXPECT_EQ(c.to_json(), R"({"kind":"categorical","choices":["integer","NA"]})");
  for (const Distribution& d :
       {i, c, Distribution::int_range(1, 1024, 1, true), Distribution::float_range(1e-4, 0.1, true),
        Distribution::float_range(-0.3, 0.7, false, 0.1), Distribution::int_range(-5, 7, 4)}) {
    const Distribution back = Distribution::from_json(d.to_json());
    EXPECT_EQ(back, d) << d.to_json();
    EXPECT_EQ(back.to_json(), d.to_json());
  }
}

TEST(Distribution, BadJsonThrowsWithTheText) {
  for (const char* text :
       {"", "{", "[]", R"({"kind":"weird"})", R"({"kind":"int","low":0})",
        R"({"kind":"int","low":0.5,"high":2})", R"({"kind":"categorical","choices":[1,2]})",
        R"({"kind":"float","low":2,"high":1})"}) {
    EXPECT_THROW(Distribution::from_json(text), Error) << text;
  }
  try {
    Distribution::from_json(R"({"kind":"weird"})");
    FAIL();
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("weird"), std::string::npos);
  }
}

}  // namespace
}  // namespace qsearch::search
