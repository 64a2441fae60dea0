// Downloading data files with curl (a subprocess: no network library linked), with progress,
// an atomic rename on success, and a SHA-256 stored beside each file.
//
//   std::string hex = download_file("https://example.org/x.csv", "/data/jsc/x.csv", std::cerr);
//   // -> /data/jsc/x.csv and /data/jsc/x.csv.sha256 ("<hex>  x.csv")
//
// curl runs as `curl --fail --location --progress-bar --connect-timeout 30 -o DEST.part URL`;
// its progress bar and messages are copied to `log` as they arrive. On failure DEST.part is
// removed and an Error names the URL, curl's message, and how to fetch the file by hand.
#pragma once

#include <iosfwd>
#include <string>
#include <vector>

namespace qsearch::data {

// Returns the SHA-256 (hex) of the downloaded file, also written to DEST.sha256.
std::string download_file(const std::string& url, const std::string& dest, std::ostream& log);
// Fetches `url` into memory (small documents such as the OpenML JSON description).
std::string fetch_text(const std::string& url, std::ostream& log);

struct DownloadSource {
  std::string what;  // "MASE/LogicNets HDF5 file"
  std::string url;   // or a resolver below when the URL must be looked up first
  std::string file;  // file name inside the destination directory
  // When non-empty: fetch this URL first (a JSON document) and take the numeric value of
  // "file_id" from it; the final URL is `url` with "{file_id}" replaced.
  std::string file_id_url;
};

// The sources of `qsearch data download jsc`: MASE's CERNBox HDF5 file, then OpenML's CSV of
// data id 42468 (its CSV URL is keyed by the file id that the data set's JSON description
// gives).
std::vector<DownloadSource> jsc_download_sources();

// Downloads each source into `dir` (created if needed); a file already there whose .sha256
// matches is kept. Returns the number of files present afterwards; throws Error naming
// every failed URL when none could be had.
int download_sources(const std::vector<DownloadSource>& sources, const std::string& dir,
                     std::ostream& log);

}  // namespace qsearch::data
