#!/usr/bin/python3
"""A ResNet-like PyTorch fixture whose 3x3 convs the float engine runs on the Winograd kernel
(src/kernels/winograd.h): enough channels and 16x16 maps that the cost model picks it at batch 1.

Regenerate (from the repository root; one CPU thread, a second, deterministic):

    /usr/bin/python3 tools/make_winograd_fixture.py

Model (seeded random weights, BatchNorm with non-trivial running statistics, eval mode):
  stem   conv3x3(3 -> 32, padding 1) + BN + ReLU                       (too few input channels)
  block  conv3x3(32 -> 32) + BN + ReLU, conv3x3(32 -> 32) + BN, + skip, ReLU   (torchvision's
         BasicBlock)
  head   conv3x3(32 -> 48, padding (1, 1) on a 15x16 crop: odd height) + ReLU, global average
         pool, Linear(48, 10)
Input [4, 3, 16, 16]. Writes tests/fixtures/cnn/resnet_wino_opset13.onnx (BatchNorm kept as
nodes: the float lowering folds it into the conv) and resnet_wino_ref.json {"input_shape",
"input", "output_shape", "float"} (flat lists; PyTorch's float32 logits).
"""

import argparse
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F


class ResNetWino(nn.Module):
    def __init__(self):
        super().__init__()
        self.stem = nn.Conv2d(3, 32, 3, padding=1, bias=False)
        self.bn0 = nn.BatchNorm2d(32)
        self.c1 = nn.Conv2d(32, 32, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.c2 = nn.Conv2d(32, 32, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(32)
        self.c3 = nn.Conv2d(32, 48, 3, padding=1)
        self.fc = nn.Linear(48, 10)
        for bn in (self.bn0, self.bn1, self.bn2):
            bn.weight.data.uniform_(0.5, 1.5)
            bn.bias.data.uniform_(-0.2, 0.2)
            bn.running_mean.uniform_(-0.2, 0.2)
            bn.running_var.uniform_(0.5, 1.5)

    def forward(self, x):
        x = F.relu(self.bn0(self.stem(x)))
        y = F.relu(self.bn1(self.c1(x)))
        x = F.relu(self.bn2(self.c2(y)) + x)
        x = F.relu(self.c3(x[:, :, 1:, :]))  # 15 x 16: an odd height
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/cnn")
    args = ap.parse_args()
    torch.manual_seed(14)
    torch.set_num_threads(1)
    m = ResNetWino().eval()
    x = torch.randn(4, 3, 16, 16)
    with torch.no_grad():
        y = m(x)
    onnx_path = os.path.join(args.out, "resnet_wino_opset13.onnx")
    torch.onnx.export(m, x[:1], onnx_path, opset_version=13, input_names=["input"],
                      output_names=["output"], training=torch.onnx.TrainingMode.PRESERVE,
                      do_constant_folding=False,
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}})
    ref = {"input_shape": list(x.shape), "input": x.flatten().tolist(),
           "output_shape": list(y.shape), "float": y.flatten().tolist()}
    with open(os.path.join(args.out, "resnet_wino_ref.json"), "w") as f:
        json.dump(ref, f)
    print("wrote", onnx_path)


if __name__ == "__main__":
    main()
