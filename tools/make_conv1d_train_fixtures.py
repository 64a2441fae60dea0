#!/usr/bin/python3
"""PyTorch reference for training a Conv1d classifier (tests/train/torch_grad_test.cc,
TorchTrain.Conv1dClassifierStepsMatchPyTorch): a few Adam steps of a small nn.Conv1d network, the
loss before every step and a sample of the weights after the last one.

Regenerate (from the repository root, Debian's python3-torch / python3-onnx):

    /usr/bin/python3 tools/make_conv1d_train_fixtures.py

Output:
  tests/train/data/torch_conv1d.onnx  the model before training (torch.onnx.export, opset 13,
                                      training mode so BatchNorm keeps its statistics as inputs)
  tests/train/data/torch_conv1d.json  {"input": [8 x 3 x 20 flat], "labels": [8], "lr",
                                      "losses": loss of each step's forward (train mode),
                                      "weights": {initializer: [[index, value], ...] after the
                                      last step}}

Model: Conv1d(3, 8, 5, padding=2) ReLU MaxPool1d(2) Conv1d(8, 12, 3, stride=2, dilation=2,
padding=1, groups=4, bias=False) BN1d ReLU AdaptiveAvgPool1d(1) Flatten Linear(12, 4);
Adam(lr=1e-3), the same batch every step, CrossEntropyLoss. (No conv bias in front of a
BatchNorm: its gradient is zero in theory, float noise on both sides, which Adam's normalisation
turns into steps of +-lr in either direction.)
"""
import io
import json

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import numpy_helper

OUT = "tests/train/data/torch_conv1d"
STEPS = 6


class Conv1dNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(3, 8, 5, padding=2)
        self.pool = nn.MaxPool1d(2)
        self.conv2 = nn.Conv1d(8, 12, 3, stride=2, dilation=2, padding=1, groups=4, bias=False)
        self.bn2 = nn.BatchNorm1d(12)
        self.gap = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(12, 4)

    def forward(self, x):
        x = self.pool(torch.relu(self.conv1(x)))
        x = torch.relu(self.bn2(self.conv2(x)))
        return self.fc(torch.flatten(self.gap(x), 1))


def sampled(a):
    flat = a.reshape(-1)
    step = max(1, flat.size // 24)
    return [[i, float(f"{flat[i]:.9g}")] for i in range(0, flat.size, step)]


def main():
    torch.manual_seed(5)
    model = Conv1dNet()
    with torch.no_grad():  # BatchNorm affine parameters that are not all 1 / 0
        model.bn2.weight.uniform_(0.5, 1.5)
        model.bn2.bias.uniform_(-0.5, 0.5)
    model.train()
    x = torch.rand(8, 3, 20) * 2 - 1
    y = torch.tensor([0, 1, 2, 3, 3, 2, 1, 0])
    buf = io.BytesIO()
    torch.onnx.export(model, x, buf, opset_version=13, input_names=["input"],
                      output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                      training=torch.onnx.TrainingMode.TRAINING)
    proto = onnx.load_from_string(buf.getvalue())
    names = {i.name for i in proto.graph.initializer}
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    losses = []
    for _ in range(STEPS):
        opt.zero_grad(set_to_none=True)
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    weights = {}
    for pname, prm in model.named_parameters():
        assert pname in names, (pname, sorted(names))
        weights[pname] = sampled(prm.detach().numpy())
    with open(OUT + ".onnx", "wb") as f:
        f.write(buf.getvalue())
    with open(OUT + ".json", "w") as f:
        json.dump({"input": [float(f"{v:.9g}") for v in x.numpy().reshape(-1)],
                   "labels": y.tolist(), "lr": 1e-3, "losses": losses, "weights": weights}, f)
    print(f"losses {losses}")


if __name__ == "__main__":
    main()
