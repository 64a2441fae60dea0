#!/usr/bin/python3
"""Reference values for tests/train/optimizer_test.cc: torch.optim on fixed gradients.

  /usr/bin/python3 bench/torch_train_optimizer_ref.py

Three steps of each optimizer on p0 = [0.5, -1.0, 2.0, 0.0] with gradients g_t = [0.1, -0.2,
0.3, 1.0] * t (t = 1, 2, 3), float32, and CosineAnnealingLR(T_max=4, eta_min=1e-6) learning
rates over 6 epochs (lr 0.1), printed with 9 significant digits for C++ literals.
"""
import torch

P0 = [0.5, -1.0, 2.0, 0.0]
G = [0.1, -0.2, 0.3, 1.0]

CASES = {
    "adam": lambda p: torch.optim.Adam([p], lr=0.01),
    "adam_wd": lambda p: torch.optim.Adam([p], lr=0.01, weight_decay=0.1),
    "adamw_wd": lambda p: torch.optim.AdamW([p], lr=0.01, weight_decay=0.1),
    "sgd": lambda p: torch.optim.SGD([p], lr=0.1),
    "sgd_momentum_wd": lambda p: torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=5e-4),
    "sgd_nesterov_wd": lambda p: torch.optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=5e-4,
                                                 nesterov=True),
    "sgd_dampening": lambda p: torch.optim.SGD([p], lr=0.1, momentum=0.5, dampening=0.3),
}

for name, make in CASES.items():
    p = torch.tensor(P0, dtype=torch.float32, requires_grad=True)
    opt = make(p)
    for t in range(1, 4):
        p.grad = torch.tensor([g * t for g in G], dtype=torch.float32)
        opt.step()
    print(name, ", ".join(f"{v:.9g}f" for v in p.detach().tolist()))

p = torch.zeros(1, requires_grad=True)
opt = torch.optim.SGD([p], lr=0.1)
sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=4, eta_min=1e-6)
lrs = []
for _ in range(6):
    lrs.append(opt.param_groups[0]["lr"])
    opt.step()
    sched.step()
print("cosine", ", ".join(f"{v!r}" for v in lrs))
