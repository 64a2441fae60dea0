#include "train/optimizer.h"

#include <cmath>
#include <numbers>

#include "core/check.h"
#include "core/error.h"
#include "core/thread_pool.h"
#include "train/binary_io.h"

namespace qsearch::train {

OptimizerKind parse_optimizer(const std::string& name) {
  if (name == "adam") return OptimizerKind::kAdam;
  if (name == "adamw") return OptimizerKind::kAdamW;
  if (name == "sgd") return OptimizerKind::kSgd;
  fail("unknown optimizer '{}' (choose adam, adamw or sgd)", name);
}

const char* optimizer_name(OptimizerKind kind) {
  switch (kind) {
    case OptimizerKind::kAdam:
      return "adam";
    case OptimizerKind::kAdamW:
      return "adamw";
    case OptimizerKind::kSgd:
      return "sgd";
  }
  return "?";
}

Optimizer::Optimizer(const OptimizerOptions& options, std::vector<int64_t> sizes)
    : options_(options), sizes_(std::move(sizes)) {
  if (options_.nesterov && (options_.momentum <= 0 || options_.dampening != 0)) {
    fail("Nesterov momentum requires a momentum > 0 and zero dampening");
  }
  for (int64_t n : sizes_) {
    m_.emplace_back(options_.kind == OptimizerKind::kSgd && options_.momentum == 0 ? 0 : n, 0.0f);
    v_.emplace_back(options_.kind == OptimizerKind::kSgd ? 0 : n, 0.0f);
  }
}

void Optimizer::step(double lr, const std::vector<ParamSlot>& params) {
  QSEARCH_CHECK(params.size() == sizes_.size());
  ++steps_;
  const OptimizerOptions& o = options_;
  // Scalars as PyTorch forms them in Python (double), then used as float by the tensor ops.
  const float wd = static_cast<float>(o.weight_decay);
  if (o.kind == OptimizerKind::kSgd) {
    const float momentum = static_cast<float>(o.momentum);
    const float keep = static_cast<float>(1.0 - o.dampening);
    const float neg_lr = static_cast<float>(-lr);
    const bool first = steps_ == 1;
    for (size_t k = 0; k < params.size(); ++k) {
      float* p = params[k].data;
      const float* grad = params[k].grad;
      float* buf = m_[k].data();
      parallel_for(0, sizes_[k], 1 << 14, [&](int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          float d = o.weight_decay != 0 ? grad[i] + wd * p[i] : grad[i];
          if (o.momentum != 0) {
            buf[i] = first ? d : buf[i] * momentum + keep * d;
            d = o.nesterov ? d + momentum * buf[i] : buf[i];
          }
          p[i] = p[i] + neg_lr * d;
        }
      });
    }
    return;
  }
  const double t = static_cast<double>(steps_);
  const double bias1 = 1.0 - std::pow(o.beta1, t);
  const double bias2 = 1.0 - std::pow(o.beta2, t);
  const float neg_step = static_cast<float>(-(lr / bias1));
  const float bias2_sqrt = static_cast<float>(std::sqrt(bias2));
  const float b1 = static_cast<float>(o.beta1), one_b1 = static_cast<float>(1.0 - o.beta1);
  const float b2 = static_cast<float>(o.beta2), one_b2 = static_cast<float>(1.0 - o.beta2);
  const float eps = static_cast<float>(o.eps);
  const bool decoupled = o.kind == OptimizerKind::kAdamW;
  const float decay = static_cast<float>(1.0 - lr * o.weight_decay);
  const bool l2 = !decoupled && o.weight_decay != 0;
  const bool decay_p = decoupled && o.weight_decay != 0;
  for (size_t k = 0; k < params.size(); ++k) {
    float* const pk = params[k].data;
    const float* const gk = params[k].grad;
    float* const mk = m_[k].data();
    float* const vk = v_[k].data();
    parallel_for(0, sizes_[k], 1 << 14, [=](int64_t b, int64_t e) {
      // Branch-free body (the options are loop-invariant selects) over unaliased arrays, so
      // that it vectorises.
      float* __restrict p = pk;
      const float* __restrict grad = gk;
      float* __restrict m = mk;
      float* __restrict v = vk;
      for (int64_t i = b; i < e; ++i) {
        const float pi = decay_p ? p[i] * decay : p[i];
        const float g = l2 ? grad[i] + wd * pi : grad[i];
        const float mi = m[i] * b1 + one_b1 * g;
        const float vi = v[i] * b2 + one_b2 * g * g;
        m[i] = mi;
        v[i] = vi;
        const float denom = std::sqrt(vi) / bias2_sqrt + eps;
        p[i] = pi + neg_step * mi / denom;
      }
    });
  }
}

namespace {
constexpr uint64_t kOptimizerTag = 0x314d4954504f5351ULL;  // "QSOPTIM1"
}

void Optimizer::save(std::ostream& out) const {
  bin::write_u64(out, kOptimizerTag);
  bin::write_string(out, optimizer_name(options_.kind));
  bin::write_i64(out, steps_);
  bin::write_u64(out, sizes_.size());
  for (size_t k = 0; k < sizes_.size(); ++k) {
    bin::write_floats(out, m_[k].data(), static_cast<int64_t>(m_[k].size()));
    bin::write_floats(out, v_[k].data(), static_cast<int64_t>(v_[k].size()));
  }
}

void Optimizer::load(std::istream& in) {
  if (bin::read_u64(in) != kOptimizerTag) fail("checkpoint has no optimizer state");
  const std::string kind = bin::read_string(in);
  if (kind != optimizer_name(options_.kind)) {
    fail("checkpoint was written by optimizer '{}', not '{}'", kind, optimizer_name(options_.kind));
  }
  const int64_t steps = bin::read_i64(in);
  if (bin::read_u64(in) != sizes_.size()) fail("checkpoint has another number of parameters");
  for (size_t k = 0; k < sizes_.size(); ++k) {
    bin::read_floats(in, m_[k].data(), static_cast<int64_t>(m_[k].size()), "optimizer state");
    bin::read_floats(in, v_[k].data(), static_cast<int64_t>(v_[k].size()), "optimizer state");
  }
  steps_ = steps;
}

CosineAnnealingLR::CosineAnnealingLR(double base_lr, int64_t t_max, double eta_min)
    : base_lr_(base_lr), eta_min_(eta_min), t_max_(t_max), lr_(base_lr) {
  if (t_max < 1) fail("cosine schedule needs T_max >= 1, got {}", t_max);
}

void CosineAnnealingLR::step() {
  ++epoch_;
  const double pi = std::numbers::pi;
  const double t = static_cast<double>(t_max_);
  const double e = static_cast<double>(epoch_);
  // Each product is rounded before the sum (volatile stops g++ from fusing them into an FMA),
  // as Python evaluates PyTorch's expression, so the rates equal PyTorch's bit for bit.
  volatile double product;
  if ((epoch_ - 1 - t_max_) % (2 * t_max_) == 0) {
    product = (base_lr_ - eta_min_) * (1 - std::cos(pi / t));
    lr_ = lr_ + product / 2;
  } else {
    product = (1 + std::cos(pi * e / t)) / (1 + std::cos(pi * (e - 1) / t)) * (lr_ - eta_min_);
    lr_ = product + eta_min_;
  }
}

}  // namespace qsearch::train
