// NumPy array files: `.npy` (np.save) and `.npz` (np.savez / np.savez_compressed), read without
// Python.
//
//   Tensor x = read_npy("/data/x.npy");                    // dtype and shape as saved
//   NpzFile z = NpzFile::open("/data/d.npz");
//   z.names();                                             // {"x_test", "y_test", ...}
//   Tensor y = z.array("y_test");
//
// .npy: format versions 1.0, 2.0 and 3.0 (the header's length as uint16 or uint32; 3.0's
// header is UTF-8). The header's dict gives 'descr', 'fortran_order' and 'shape'. Supported
// element types (either byte order: '<', '>', '|', '='; big-endian data is byte-swapped):
//
//   descr       Tensor dtype
//   f4 / f8     float32 / float64
//   i1 u1       int8 / uint8
//   i2 i4 i8    int16 / int32 / int64
//   u2 / u4     int32 / int64 (widened: no unsigned dtype of that width)
//   b1 (bool)   uint8 (0 / 1)
//
// Anything else (float16, complex, strings, objects, structured dtypes, uint64) is an Error
// naming the file, the array and the fix (astype to a supported type before saving).
// fortran_order True is read and transposed into C order (the Tensor is row-major).
//
// .npz: a zip archive with one NAME.npy member per array, stored (np.savez) or deflated
// (np.savez_compressed), with or without zip64 records (numpy writes zip64 extra fields for
// every member); each member's CRC-32 is checked. Members not ending in .npy are ignored.
//
// Every malformed input throws qsearch::Error with one line naming the file (and the member),
// what is wrong, and the fix; no input crashes or allocates more than the file could hold
// (a deflated member's declared size is capped at 1032x its compressed size, deflate's limit).
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/tensor.h"

namespace qsearch::data {

class FileBytes;

// Parses the bytes of one .npy file. `where` names it in errors ("'d.npz' member 'x.npy'").
Tensor parse_npy(std::string_view bytes, const std::string& where);
// Reads a .npy file (plain or gzip). max_rows >= 0 keeps only the first max_rows rows (the
// leading dim) of a C-order array and reads no further; *rows, when given, gets the array's
// full leading dim (the file is checked against its whole declared shape either way).
Tensor read_npy(const std::string& path, int64_t max_rows = -1, int64_t* rows = nullptr);

class NpzFile {
 public:
  // Reads the archive's directory (not the arrays). Throws Error on a missing file, a file that
  // is no zip archive, or a damaged directory.
  static NpzFile open(const std::string& path);

  const std::string& path() const { return path_; }
  // Array names (member names without ".npy"), in archive order.
  std::vector<std::string> names() const;
  bool has(const std::string& name) const;
  // Decompresses, checks and parses one array. Throws Error naming the member on damage, and
  // listing names() when there is no such array.
  // max_rows / rows as for read_npy: a deflated member is inflated in slices and only the
  // kept rows are held; a stored one is read through the mapping, which is returned to the page
  // cache as it is checked. Every byte's CRC-32 is still checked.
  Tensor array(const std::string& name, int64_t max_rows = -1, int64_t* rows = nullptr) const;

  struct Member {
    std::string name;  // without ".npy"
    uint16_t method = 0;
    uint32_t crc = 0;
    uint64_t compressed = 0, uncompressed = 0, local_offset = 0;
  };

 private:
  std::string path_;
  std::shared_ptr<const FileBytes> bytes_;
  std::vector<Member> members_;
};

}  // namespace qsearch::data
