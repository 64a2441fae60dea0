#!/usr/bin/python3
"""Torchvision-class CNNs for the integer engine's benchmark (issue 14); driver:
bench/run_int_cnn.sh.

  /usr/bin/python3 bench/torch_cnn_models.py --out DIR [--n224 48] [--n32 128]
      Writes, for ARCH in mobilenet_v2, efficientnet_b0, resnet18, regnet_x_400mf and
      squeezenet1_1 and SIZE in 32 and 224, DIR/ARCH_SIZE.onnx: the architecture written out by
      hand (torchvision is not installed; the layer structure follows torchvision's models of
      those names, 1000 classes; resnet18 is bench/torch_user_models.py's ResNet18),
      random weights seeded with torch.manual_seed(0) and torchvision's init, exported with
      torch.onnx.export in eval mode at opset 13 with the exporter's defaults, so every
      BatchNorm is folded into its conv (as a plain float export of these models is); input
      [batch, 3, SIZE, SIZE], the batch dynamic. Also the data sets as .npz (float32 x, int64 y)
      that qsearch reads with --dataset npz:PATH: DIR/cnn224.npz (N224 random N(0,1) inputs
      [N, 3, 224, 224]) and DIR/cnn32.npz (N32 inputs [N, 3, 32, 32]), random labels in
      0..999 (the first one 999).

MobileNetV2: ReLU6 (exported as Clip), depthwise 3x3 convolutions, 1x1 expansions and
projections, residual adds, global average pool, dropout, linear head. EfficientNet-B0: SiLU
(Sigmoid + Mul), depthwise 3x3 and 5x5 convolutions, squeeze-and-excitation (global average
pool, two 1x1 convs, Sigmoid, Mul), residual adds (stochastic depth is the identity in eval).
RegNetX-400MF: grouped 3x3 convs (group width 16: 2, 4, 10 and 25 groups), 1x1 convs,
projection shortcuts, residual adds and ReLUs. SqueezeNet 1.1: fire modules (1x1 squeeze, 1x1
and 3x3 expands joined by Concat), 3x3 stride-2 max pools with ceil_mode, a 1x1 conv head with
ReLU and global average pool.
"""
import argparse
import math
import os
import sys

import numpy as np
import torch
import torch.nn as nn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_user_models import ResNet18  # noqa: E402


def make_divisible(v, divisor=8, min_value=None):
    min_value = min_value or divisor
    new_v = max(min_value, int(v + divisor / 2) // divisor * divisor)
    if new_v < 0.9 * v:
        new_v += divisor
    return new_v


def conv_bn_act(cin, cout, k, stride=1, groups=1, act=nn.ReLU6):
    layers = [nn.Conv2d(cin, cout, k, stride, (k - 1) // 2, groups=groups, bias=False),
              nn.BatchNorm2d(cout)]
    if act is not None:
        layers.append(act(inplace=True))
    return nn.Sequential(*layers)


# --- MobileNetV2 --------------------------------------------------------------------------------
class InvertedResidual(nn.Module):
    def __init__(self, cin, cout, stride, expand):
        super().__init__()
        hidden = int(round(cin * expand))
        self.use_res = stride == 1 and cin == cout
        layers = []
        if expand != 1:
            layers.append(conv_bn_act(cin, hidden, 1))
        layers += [conv_bn_act(hidden, hidden, 3, stride, groups=hidden),
                   nn.Conv2d(hidden, cout, 1, bias=False), nn.BatchNorm2d(cout)]
        self.conv = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.conv(x) if self.use_res else self.conv(x)


class MobileNetV2(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        settings = [[1, 16, 1, 1], [6, 24, 2, 2], [6, 32, 3, 2], [6, 64, 4, 2], [6, 96, 3, 1],
                    [6, 160, 3, 2], [6, 320, 1, 1]]
        cin = 32
        features = [conv_bn_act(3, cin, 3, 2)]
        for t, c, n, s in settings:
            for i in range(n):
                features.append(InvertedResidual(cin, c, s if i == 0 else 1, t))
                cin = c
        features.append(conv_bn_act(cin, 1280, 1))
        self.features = nn.Sequential(*features)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.pool(self.features(x)), 1))


# --- EfficientNet-B0 ----------------------------------------------------------------------------
class SqueezeExcitation(nn.Module):
    def __init__(self, cin, squeeze):
        super().__init__()
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc1, self.fc2 = nn.Conv2d(cin, squeeze, 1), nn.Conv2d(squeeze, cin, 1)
        self.act, self.gate = nn.SiLU(inplace=True), nn.Sigmoid()

    def forward(self, x):
        return x * self.gate(self.fc2(self.act(self.fc1(self.avgpool(x)))))


class MBConv(nn.Module):
    def __init__(self, cin, cout, k, stride, expand):
        super().__init__()
        hidden = make_divisible(cin * expand)
        self.use_res = stride == 1 and cin == cout
        layers = []
        if hidden != cin:
            layers.append(conv_bn_act(cin, hidden, 1, act=nn.SiLU))
        layers += [conv_bn_act(hidden, hidden, k, stride, groups=hidden, act=nn.SiLU),
                   SqueezeExcitation(hidden, max(1, cin // 4)),
                   conv_bn_act(hidden, cout, 1, act=None)]
        self.block = nn.Sequential(*layers)

    def forward(self, x):
        return x + self.block(x) if self.use_res else self.block(x)


class EfficientNetB0(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        # expand, kernel, stride, in, out, layers (torchvision's efficientnet_b0).
        settings = [[1, 3, 1, 32, 16, 1], [6, 3, 2, 16, 24, 2], [6, 5, 2, 24, 40, 2],
                    [6, 3, 2, 40, 80, 3], [6, 5, 1, 80, 112, 3], [6, 5, 2, 112, 192, 4],
                    [6, 3, 1, 192, 320, 1]]
        features = [conv_bn_act(3, 32, 3, 2, act=nn.SiLU)]
        for e, k, s, cin, cout, n in settings:
            for i in range(n):
                features.append(MBConv(cin if i == 0 else cout, cout, k, s if i == 0 else 1, e))
        features.append(conv_bn_act(320, 1280, 1, act=nn.SiLU))
        self.features = nn.Sequential(*features)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.classifier = nn.Sequential(nn.Dropout(0.2), nn.Linear(1280, num_classes))

    def forward(self, x):
        return self.classifier(torch.flatten(self.avgpool(self.features(x)), 1))


# --- RegNetX-400MF --------------------------------------------------------------------------
class RegNetBlock(nn.Module):
    def __init__(self, cin, cout, stride, group_width=16):
        super().__init__()
        self.proj = None
        if cin != cout or stride != 1:
            self.proj = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                      nn.BatchNorm2d(cout))
        self.f = nn.Sequential(conv_bn_act(cin, cout, 1, act=nn.ReLU),
                               conv_bn_act(cout, cout, 3, stride, groups=cout // group_width,
                                           act=nn.ReLU),
                               nn.Conv2d(cout, cout, 1, bias=False), nn.BatchNorm2d(cout))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        return self.relu((x if self.proj is None else self.proj(x)) + self.f(x))


class RegNetX400MF(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        layers, cin = [conv_bn_act(3, 32, 3, 2, act=nn.ReLU)], 32
        for depth, width in ((1, 32), (2, 64), (7, 160), (12, 400)):
            for i in range(depth):
                layers.append(RegNetBlock(cin, width, 2 if i == 0 else 1))
                cin = width
        self.trunk = nn.Sequential(*layers)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(400, num_classes)

    def forward(self, x):
        return self.fc(torch.flatten(self.avgpool(self.trunk(x)), 1))


# --- SqueezeNet 1.1 -------------------------------------------------------------------------
class Fire(nn.Module):
    def __init__(self, cin, squeeze, e1, e3):
        super().__init__()
        self.squeeze = nn.Sequential(nn.Conv2d(cin, squeeze, 1), nn.ReLU(inplace=True))
        self.e1 = nn.Sequential(nn.Conv2d(squeeze, e1, 1), nn.ReLU(inplace=True))
        self.e3 = nn.Sequential(nn.Conv2d(squeeze, e3, 3, padding=1), nn.ReLU(inplace=True))

    def forward(self, x):
        x = self.squeeze(x)
        return torch.cat([self.e1(x), self.e3(x)], 1)


class SqueezeNet11(nn.Module):
    def __init__(self, num_classes=1000):
        super().__init__()
        pool = lambda: nn.MaxPool2d(3, 2, ceil_mode=True)  # noqa: E731
        self.features = nn.Sequential(
            nn.Conv2d(3, 64, 3, 2), nn.ReLU(inplace=True), pool(), Fire(64, 16, 64, 64),
            Fire(128, 16, 64, 64), pool(), Fire(128, 32, 128, 128), Fire(256, 32, 128, 128),
            pool(), Fire(256, 48, 192, 192), Fire(384, 48, 192, 192), Fire(384, 64, 256, 256),
            Fire(512, 64, 256, 256))
        self.classifier = nn.Sequential(nn.Dropout(0.5), nn.Conv2d(512, num_classes, 1),
                                        nn.ReLU(inplace=True), nn.AdaptiveAvgPool2d(1))

    def forward(self, x):
        return torch.flatten(self.classifier(self.features(x)), 1)


def init_weights(model):
    # torchvision's init for both: kaiming fan_out convs, BN (1, 0), linear U(+-1/sqrt(out)).
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            r = 1.0 / math.sqrt(m.out_features)
            nn.init.uniform_(m.weight, -r, r)
            nn.init.zeros_(m.bias)


ARCHS = {"mobilenet_v2": MobileNetV2, "efficientnet_b0": EfficientNetB0, "resnet18": ResNet18,
         "regnet_x_400mf": RegNetX400MF, "squeezenet1_1": SqueezeNet11}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--n224", type=int, default=48)
    ap.add_argument("--n32", type=int, default=128)
    args = ap.parse_args()
    os.makedirs(args.out, exist_ok=True)
    for name, cls in ARCHS.items():
        torch.manual_seed(0)
        model = cls()
        if cls is not ResNet18:  # which initialises itself the same way
            init_weights(model)
        model.eval()
        for size in (32, 224):
            path = os.path.join(args.out, f"{name}_{size}.onnx")
            torch.onnx.export(model, torch.randn(1, 3, size, size), path, opset_version=13,
                              input_names=["input"], output_names=["logits"],
                              dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
            print("wrote", path)
    rng = np.random.default_rng(0)
    for size, n in ((224, args.n224), (32, args.n32)):
        x = rng.standard_normal((n, 3, size, size), dtype=np.float32)
        y = rng.integers(0, 1000, n).astype(np.int64)
        y[0] = 999  # qsearch counts the classes as max(y) + 1: the model's 1000
        path = os.path.join(args.out, f"cnn{size}.npz")
        np.savez(path, x=x, y=y)
        print("wrote", path)


if __name__ == "__main__":
    main()
