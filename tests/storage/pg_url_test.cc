// PostgreSQL storage URLs as SQLAlchemy + psycopg2 (and so Optuna) read them
// (storage/storage_url.h), and the password never showing in what qsearch prints.
#include <gtest/gtest.h>

#include <map>

#include "core/error.h"
#include "storage/storage_url.h"

namespace qsearch::storage {
namespace {

std::string error_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

std::map<std::string, std::string> params_of(const std::string& url) {
  StorageUrl u = parse_storage_url(url);
  EXPECT_EQ(u.backend, StorageBackend::kPostgres) << url;
  std::map<std::string, std::string> out;
  for (const auto& [k, v] : u.pg) {
    EXPECT_TRUE(out.emplace(k, v).second) << "keyword given twice: " << k << " in " << url;
  }
  return out;
}

using Params = std::map<std::string, std::string>;

TEST(PgUrl, SqlalchemySchemesAndParts) {
  for (const char* scheme : {"postgresql", "postgres", "postgresql+psycopg2"}) {
    const std::string url = std::string(scheme) + "://alice:secret@db.lan:5433/studies";
    EXPECT_EQ(params_of(url), (Params{{"host", "db.lan"},
                                      {"port", "5433"},
                                      {"user", "alice"},
                                      {"password", "secret"},
                                      {"dbname", "studies"}}))
        << url;
    EXPECT_FALSE(parse_storage_url(url).memory());
  }
  EXPECT_EQ(params_of("postgresql://alice@db.lan/s"),
            (Params{{"host", "db.lan"}, {"user", "alice"}, {"dbname", "s"}}));
  EXPECT_EQ(params_of("postgresql://db.lan/s"), (Params{{"host", "db.lan"}, {"dbname", "s"}}));
  // An empty password is a password (libpq then sends it).
  EXPECT_EQ(params_of("postgresql://alice:@h/s"),
            (Params{{"host", "h"}, {"user", "alice"}, {"password", ""}, {"dbname", "s"}}));
}

TEST(PgUrl, PercentEncodedPartsAreDecoded) {
  EXPECT_EQ(
      params_of("postgresql://al%40ice:p%40ss%3Aw%2Frd%25%20x@h/my%2Ddb"),
      (Params{
          {"host", "h"}, {"user", "al@ice"}, {"password", "p@ss:w/rd% x"}, {"dbname", "my-db"}}));
  // An unescaped '@' in the password: the last '@' ends the user part.
  EXPECT_EQ(params_of("postgresql://u:p@ss@h/s")["password"], "p@ss");
  std::string e = error_of([] { parse_storage_url("postgresql://u:100%@h/s"); });
  EXPECT_NE(e.find("%25"), std::string::npos) << e;
  EXPECT_EQ(e.find("100%"), std::string::npos) << "password shown: " << e;
}

TEST(PgUrl, UnixSocketsIpv6AndLibpqOptions) {
  EXPECT_EQ(params_of("postgresql://u:pw@/studies?host=/var/run/postgresql"),
            (Params{{"user", "u"},
                    {"password", "pw"},
                    {"dbname", "studies"},
                    {"host", "/var/run/postgresql"}}));
  EXPECT_EQ(params_of("postgresql://u@/s?host=%2Ftmp%2Fsock&port=5433")["host"], "/tmp/sock");
  EXPECT_EQ(params_of("postgresql://u@/s?host=/tmp/sock&port=5433")["port"], "5433");
  // The query overrides the authority (psycopg2 gets both; the keyword wins).
  EXPECT_EQ(params_of("postgresql://u@h/s?host=/tmp/sock")["host"], "/tmp/sock");
  EXPECT_EQ(params_of("postgresql://u@[::1]:5433/s"),
            (Params{{"host", "::1"}, {"port", "5433"}, {"user", "u"}, {"dbname", "s"}}));
  Params p = params_of("postgresql://u@h/s?sslmode=require&connect_timeout=3&application_name=w1");
  EXPECT_EQ(p["sslmode"], "require");
  EXPECT_EQ(p["connect_timeout"], "3");
  EXPECT_EQ(p["application_name"], "w1");
}

TEST(PgUrl, BadUrlsAreOneLineErrorsWithThePasswordHidden) {
  struct Case {
    const char* url;
    const char* says;
  };
  for (const Case& c : {Case{"postgresql://u:topsecret@h:port/s", "port"},
                        Case{"postgresql://u:topsecret@h:70000/s", "65535"},
                        Case{"postgresql://u:topsecret@h", "names no database"},
                        Case{"postgresql://u:topsecret@h/", "names no database"},
                        Case{"postgresql://u:topsecret@[::1/s", "']'"},
                        Case{"postgresql://u:topsecret@h/s?bogus=1", "'bogus'"},
                        Case{"postgresql://u:topsecret@h/s?timeout=5", "'timeout'"},
                        Case{"postgresql://u:topsecret@h/a/b", "'/'"},
                        Case{"mysql://u:topsecret@h/s", "'mysql'"}}) {
    std::string e = error_of([&] { parse_storage_url(c.url); });
    EXPECT_NE(e.find(c.says), std::string::npos) << c.url << ": " << e;
    EXPECT_EQ(e.find("topsecret"), std::string::npos) << "password shown: " << e;
    EXPECT_NE(e.find("u:***@"), std::string::npos) << "URL not named: " << e;
    EXPECT_EQ(e.find('\n'), std::string::npos) << "one line: " << e;
  }
}

TEST(PgUrl, HidePasswordLikeSqlalchemy) {
  EXPECT_EQ(hide_password("postgresql://user:pw@host:5432/db"),
            "postgresql://user:***@host:5432/db");
  EXPECT_EQ(hide_password("postgresql+psycopg2://u:p%40ss@h/db?sslmode=require"),
            "postgresql+psycopg2://u:***@h/db?sslmode=require");
  EXPECT_EQ(hide_password("postgresql://u:p@ss@h/db"), "postgresql://u:***@h/db");
  EXPECT_EQ(hide_password("postgresql://u@h/db"), "postgresql://u@h/db");
  EXPECT_EQ(hide_password("postgresql://u@/db?host=/tmp&password=pw&port=1"),
            "postgresql://u@/db?host=/tmp&password=***&port=1");
  EXPECT_EQ(hide_password("sqlite:////abs/x.db"), "sqlite:////abs/x.db");
  EXPECT_EQ(hide_password("out/study.db"), "out/study.db");
  EXPECT_EQ(parse_storage_url("postgres://a:b@h/s").display, "postgres://a:***@h/s");
}

TEST(PgUrl, SqliteUrlsStaySqlite) {
  StorageUrl u = parse_storage_url("sqlite:///x.db");
  EXPECT_EQ(u.backend, StorageBackend::kSqlite);
  EXPECT_TRUE(u.pg.empty());
  EXPECT_EQ(u.display, "sqlite:///x.db");
}

}  // namespace
}  // namespace qsearch::storage
