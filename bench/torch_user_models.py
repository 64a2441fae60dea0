#!/usr/bin/python3
"""PyTorch side of the users' models benchmark (issue 11); driver: bench/run_user_models.sh.

  /usr/bin/python3 bench/torch_user_models.py prepare --out DIR [--n32 512] [--n224 32]
      Writes DIR/resnet18_32.onnx and DIR/resnet18_224.onnx (a torchvision-style ResNet-18,
      1000 classes, random weights seeded with torch.manual_seed(0) and torchvision's init;
      opset 13, exported in eval mode with training=PRESERVE and do_constant_folding=False, so
      every BatchNorm stays a BatchNormalization node, not folded into its conv; inputs
      [batch, 3, 32, 32] and [batch, 3, 224, 224], the batch dynamic), DIR/resnet18.pt (the
      same weights for the eager runs) and the data sets, float32 inputs and int64 labels as .npz
      (arrays x, y) that qsearch reads with --dataset npz:PATH:
        DIR/vit28.npz      the first 2048 MNIST test images / 255 (random N(0,1) inputs when the
                           MNIST files are missing), their labels;
        DIR/res32.npz      N32 random N(0,1) inputs [N, 3, 32, 32], random labels in 0..999;
        DIR/res224.npz     N224 random inputs [N, 3, 224, 224], random labels in 0..999.
  /usr/bin/python3 bench/torch_user_models.py run --arch vit|resnet18 --models DIR \\
      --data DIR/res32.npz --mode float|fake --threads 2 --batch 64 --reps 3
      Times eager evaluation (model.eval(), torch.no_grad(), cross-entropy and top-1 as MASE's
      basic_evaluation) after an untimed warm-up pass, and prints one JSON line. --mode fake
      times MASE's per-trial cost: quantize_transform (bench/torch_fakequant_eval.py: every
      nn.Linear / nn.Conv2d replaced by LinearInteger / Conv2dInteger, the ViT's two attention
      matmuls by matmul_integer) plus the evaluation, formats --data-in/--weight/--bias.

The ViT is models/vit-tiny_mnist.onnx rebuilt as nn.Modules (patch-embedding conv 7x7/7 to
64 channels, 16 tokens plus a position embedding, 2 pre-norm blocks with 4-head attention and a
64-128-64 exact-GELU MLP, final LayerNorm, mean over tokens, linear head) with the ONNX file's
weights; nn.LayerNorm and nn.GELU are PyTorch's fused kernels.
"""
import argparse
import json
import os
import sys
import time

import numpy as np
import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_fakequant_eval import evaluate, fmt, matmul_integer, quantize_transform  # noqa: E402
from torch_float_eval import THREAD_ENV, blas_library, load_mnist  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# --- ViT (models/vit-tiny_mnist.onnx) -------------------------------------------------------
class Attention(nn.Module):
    def __init__(self, dim=64, heads=4):
        super().__init__()
        self.heads, self.hd = heads, dim // heads
        self.q_proj, self.k_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.v_proj, self.out_proj = nn.Linear(dim, dim), nn.Linear(dim, dim)
        self.matmul_config = None  # set by quantize_transform: MASE's matmul_integer

    def mm(self, a, b):
        return torch.matmul(a, b) if self.matmul_config is None else matmul_integer(
            a, b, self.matmul_config)

    def forward(self, x):
        n, t, d = x.shape
        q = self.q_proj(x).reshape(n, t, self.heads, self.hd).transpose(1, 2)
        k = self.k_proj(x).reshape(n, t, self.heads, self.hd).permute(0, 2, 3, 1)
        v = self.v_proj(x).reshape(n, t, self.heads, self.hd).transpose(1, 2)
        a = torch.softmax(self.mm(q, k) * self.hd ** -0.5, dim=-1)
        return self.out_proj(self.mm(a, v).transpose(1, 2).reshape(n, t, d))


class Block(nn.Module):
    def __init__(self, dim=64, hidden=128):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(dim), Attention(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.fc1, self.act, self.fc2 = nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.fc2(self.act(self.fc1(self.norm2(x))))


class VitTiny(nn.Module):
    def __init__(self, dim=64, depth=2, classes=10):
        super().__init__()
        self.patch_embed = nn.Conv2d(1, dim, 7, stride=7)
        self.pos_embed = nn.Parameter(torch.zeros(1, 16, dim))
        self.blocks = nn.ModuleList(Block(dim) for _ in range(depth))
        self.norm, self.head = nn.LayerNorm(dim), nn.Linear(dim, classes)

    def forward(self, x):
        x = self.patch_embed(x).flatten(2).transpose(1, 2) + self.pos_embed
        for b in self.blocks:
            x = b(x)
        return self.head(self.norm(x).mean(dim=1))


def load_vit(path):
    w = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy())
         for t in onnx.load(path).graph.initializer}
    m = VitTiny()
    sd = {}
    for k, p in m.state_dict().items():
        onnx_key = k.replace("blocks.0.fc", "blocks.0.mlp.fc").replace("blocks.1.fc",
                                                                        "blocks.1.mlp.fc")
        t = w[onnx_key]
        # MatMul initializers are [in, out]: nn.Linear keeps [out, in] (the Gemm head is already).
        sd[k] = t.t() if (t.dim() == 2 and k != "head.weight") else t
    m.load_state_dict(sd)
    return m.eval()


# --- ResNet-18 (torchvision's architecture, written out: torchvision is not installed) -------
class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(cout)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))

    def forward(self, x):
        idt = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + idt)


class ResNet18(nn.Module):
    def __init__(self, classes=1000):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        layers, cin = [], 64
        for cout, stride in ((64, 1), (128, 2), (256, 2), (512, 2)):
            layers.append(nn.Sequential(BasicBlock(cin, cout, stride), BasicBlock(cout, cout, 1)))
            cin = cout
        self.layer1, self.layer2, self.layer3, self.layer4 = layers
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(512, classes)
        for m in self.modules():  # torchvision's init
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.constant_(m.weight, 1)
                nn.init.constant_(m.bias, 0)

    def forward(self, x):
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def prepare(args):
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    model = ResNet18().eval()
    torch.save(model.state_dict(), os.path.join(args.out, "resnet18.pt"))
    for hw in (32, 224):  # the same weights, one file per input size (only the batch is dynamic)
        torch.onnx.export(model, torch.zeros(2, 3, hw, hw),
                          os.path.join(args.out, f"resnet18_{hw}.onnx"), opset_version=13,
                          input_names=["input"], output_names=["logits"],
                          dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                          training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    rng = np.random.default_rng(0)
    try:
        x, y = load_mnist("test")
        x, y = x[:args.nvit].numpy(), y[:args.nvit].numpy()
    except OSError:
        x = rng.standard_normal((args.nvit, 1, 28, 28), dtype=np.float32)
        y = rng.integers(0, 10, args.nvit)
        y[0] = 9
    np.savez(os.path.join(args.out, "vit28.npz"), x=x, y=y.astype(np.int64))
    for name, n, hw in (("res32", args.n32, 32), ("res224", args.n224, 224)):
        x = rng.standard_normal((n, 3, hw, hw), dtype=np.float32)
        y = rng.integers(0, 1000, n)
        y[0] = 999  # qsearch's class count is 1 + the largest label
        np.savez(os.path.join(args.out, f"{name}.npz"), x=x, y=y.astype(np.int64))
    print(f"wrote resnet18_32.onnx, resnet18_224.onnx, resnet18.pt, vit28.npz, res32.npz and "
          f"res224.npz into {args.out}")


def run(args):
    torch.set_num_threads(args.threads)
    if args.arch == "vit":
        model = load_vit(os.path.join(ROOT, "models", "vit-tiny_mnist.onnx"))
    else:
        model = ResNet18()
        model.load_state_dict(torch.load(os.path.join(args.models, "resnet18.pt")))
        model.eval()
    d = np.load(args.data)
    x, y = torch.from_numpy(d["x"]), torch.from_numpy(d["y"])
    config = {"data_in": fmt(args.data_in), "weight": fmt(args.weight), "bias": fmt(args.bias)}
    times, acc, loss = [], None, None
    for r in range(args.reps + 1):  # r == 0: warm-up
        start = time.perf_counter()
        m = quantize_transform(model, config) if args.mode == "fake" else model
        loss, acc = evaluate(m, x, y, args.batch)
        if r > 0:
            times.append(time.perf_counter() - start)
    print(json.dumps({
        "engine": "torch", "arch": args.arch, "data": os.path.basename(args.data),
        "mode": args.mode, "threads": args.threads, "batch": args.batch,
        "samples": int(x.shape[0]), "seconds": times,
        "samples_per_s": [x.shape[0] / t for t in times], "accuracy": acc, "loss": loss,
        "formats": f"data_in {args.data_in}, weight {args.weight}, bias {args.bias}",
        "torch": torch.__version__, "blas": blas_library(),
        "env": " ".join(f"{k}={os.environ[k]}" for k in THREAD_ENV if k in os.environ)}),
        flush=True)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("prepare")
    e.add_argument("--out", required=True)
    e.add_argument("--nvit", type=int, default=2048)
    e.add_argument("--n32", type=int, default=512)
    e.add_argument("--n224", type=int, default=32)
    r = sub.add_parser("run")
    r.add_argument("--arch", choices=["vit", "resnet18"], required=True)
    r.add_argument("--models", required=True)
    r.add_argument("--data", required=True)
    r.add_argument("--mode", choices=["float", "fake"], default="float")
    r.add_argument("--threads", type=int, default=2)
    r.add_argument("--batch", type=int, default=64)
    r.add_argument("--reps", type=int, default=3)
    r.add_argument("--data-in", default="8.4")
    r.add_argument("--weight", default="8.6")
    r.add_argument("--bias", default="16.8")
    args = p.parse_args()
    prepare(args) if args.cmd == "prepare" else run(args)


if __name__ == "__main__":
    main()
