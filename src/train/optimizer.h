// Optimizers and the learning-rate schedule, with PyTorch's update rules (torch.optim,
// single-tensor implementations, torch 1.13), element by element in float as PyTorch computes
// them, scalars (bias corrections, step sizes) in double.
//
//   adam   (Adam(lr, betas=(b1, b2), eps, weight_decay)):
//            g = grad + wd * p;  m = b1 m + (1 - b1) g;  v = b2 v + (1 - b2) g^2;  t += 1
//            p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)
//   adamw  (AdamW, decoupled decay): p *= 1 - lr * wd, then the adam update with g = grad
//   sgd    (SGD(lr, momentum, dampening=0, weight_decay, nesterov)):
//            g = grad + wd * p;  buf = g at the first step, else momentum buf + (1 - dampening) g
//            d = nesterov ? g + momentum buf : buf  (d = g when momentum = 0);  p -= lr d
//
//   CosineAnnealingLR(T_max, eta_min), stepped once per epoch (Lightning's default interval):
//     lr_0 = base;  lr_e = eta_min + (1 + cos(pi e / T)) / (1 + cos(pi (e - 1) / T))
//                                    * (lr_{e-1} - eta_min)
//     (PyTorch's recursive form, in double; equal to eta_min + (base - eta_min)(1 + cos(pi e/T))/2)
//
//   Optimizer opt({.kind = OptimizerKind::kAdam, .weight_decay = 0}, sizes);
//   opt.step(lr, {{p.data, p.grad}, ...});   // one update of every parameter, in order
#pragma once

#include <cstdint>
#include <iosfwd>
#include <string>
#include <vector>

namespace qsearch::train {

enum class OptimizerKind { kAdam, kAdamW, kSgd };

// "adam" | "adamw" | "sgd"; anything else is an Error listing these.
OptimizerKind parse_optimizer(const std::string& name);
const char* optimizer_name(OptimizerKind kind);

struct OptimizerOptions {
  OptimizerKind kind = OptimizerKind::kAdam;
  double weight_decay = 0.0;
  double beta1 = 0.9, beta2 = 0.999, eps = 1e-8;  // adam, adamw
  double momentum = 0.9;                          // sgd
  double dampening = 0.0;                         // sgd
  bool nesterov = false;                          // sgd (needs momentum > 0)
};

struct ParamSlot {
  float* data;
  const float* grad;
};

class Optimizer {
 public:
  // sizes: elements of each parameter, in the order step() receives them.
  Optimizer(const OptimizerOptions& options, std::vector<int64_t> sizes);

  // One update of every parameter with learning rate lr. Parallel over elements (each element
  // is independent, so the result does not depend on the thread count).
  void step(double lr, const std::vector<ParamSlot>& params);

  int64_t steps() const { return steps_; }
  const OptimizerOptions& options() const { return options_; }

  // The state (step count, moment / momentum buffers) for checkpoints; load() checks that the
  // sizes and kind match and throws Error otherwise.
  void save(std::ostream& out) const;
  void load(std::istream& in);

 private:
  OptimizerOptions options_;
  std::vector<int64_t> sizes_;
  int64_t steps_ = 0;
  std::vector<std::vector<float>> m_, v_;  // adam: exp_avg, exp_avg_sq; sgd: m_ = momentum
};

class CosineAnnealingLR {
 public:
  CosineAnnealingLR(double base_lr, int64_t t_max, double eta_min);
  // Learning rate of the current epoch.
  double lr() const { return lr_; }
  int64_t epoch() const { return epoch_; }
  // Advances one epoch (PyTorch's scheduler.step()).
  void step();

 private:
  double base_lr_, eta_min_;
  int64_t t_max_;
  int64_t epoch_ = 0;
  double lr_;
};

}  // namespace qsearch::train
