#include "kernels/eigen_gemm.h"

#include <Eigen/Core>

namespace qsearch::kernels {

void gemm_f32_eigen(int64_t m, int64_t n, int64_t k, const float* a, const float* w, float* y) {
  using RowMajor = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Eigen::Map<const RowMajor> am(a, m, k), wm(w, n, k);
  Eigen::Map<RowMajor> ym(y, m, n);
  ym.noalias() = am * wm.transpose();
}

}  // namespace qsearch::kernels
