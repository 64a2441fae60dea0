// Helpers of the PostgreSQL storage tests (the cluster and its fixture: support/pg_cluster.h).
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "core/error.h"
#include "storage/pg_connection.h"
#include "storage/storage_url.h"

namespace qsearch::storage {

// A connection to a URL, as open_storage makes one.
inline std::unique_ptr<PgConnection> connect(const std::string& url) {
  StorageUrl u = parse_storage_url(url);
  return std::make_unique<PgConnection>(u.pg, u.display);
}

// The message of the qsearch::Error `body` throws, or "(no error)".
inline std::string error_of(const std::function<void()>& body) {
  try {
    body();
  } catch (const Error& e) {
    return e.what();
  }
  return "(no error)";
}

}  // namespace qsearch::storage
