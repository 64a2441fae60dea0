// IDX files (the MNIST / Fashion-MNIST format), plain or gzip.
//
// Layout (big-endian): magic 00 00 08 NDIMS (08 = unsigned byte), NDIMS uint32 dims, then the
// bytes. Images: NDIMS = 3 (count, rows, cols), magic 0x00000803. Labels: NDIMS = 1, magic
// 0x00000801. The loaders check the magic, that every dim is positive, that the file holds
// exactly the bytes the header announces (a truncated file or trailing garbage is an Error),
// that images and labels agree in count, and that every label is < num_classes.
//
//   Dataset d = load_idx_pair("mnist", Split::kTest, images_path, labels_path, names, fix);
//   d.x: float32 [N, 1, rows, cols] = byte / 255 (exactly torchvision's ToTensor(): the
//        float32 division, not a multiplication by 1/255); d.y: int64 [N]
#pragma once

#include <string>
#include <vector>

#include "data/dataset.h"

namespace qsearch::data {

struct IdxHeader {
  int ndims = 0;
  std::vector<int64_t> dims;
  size_t data_offset = 0;  // 4 + 4 * ndims
};

// Reads only the header (the first 8 or 16 bytes after decompression) to report sizes. Throws
// Error on a bad magic number or dims, but does not check the payload length.
std::vector<int64_t> peek_idx_dims(const std::string& path, const std::string& fix);

// Loads an images file and a labels file as one split, streaming each file through a small
// buffer (no whole-file copy). Throws Error naming the path and `fix` on any problem. With
// max_samples > 0 only the first max_samples samples are kept (the whole files are still read
// and checked, so an error does not depend on it; the float32 images of the rest never exist).
Dataset load_idx_pair(const std::string& name, Split split, const std::string& images_path,
                      const std::string& labels_path, const std::vector<std::string>& class_names,
                      const std::string& fix, int64_t max_samples = 0);

}  // namespace qsearch::data
