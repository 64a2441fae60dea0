#!/usr/bin/python3
"""PyTorch twin of `qsearch train`: the same zoo, recipe and schedule, for parity and speed.

Run with Debian's interpreter (/usr/bin/python3: python3-torch on OpenBLAS).

  /usr/bin/python3 bench/torch_train.py --model mlp --dataset mnist --epochs 5 \
      --batch-size 256 --lr 1e-3 --optimizer adam --seed 0 --threads 2 [--json]
  /usr/bin/python3 bench/torch_train.py --dump-names tests/train/data/torch_node_names.txt
  /usr/bin/python3 bench/torch_train.py --grad-reference tests/train/data/torch_grad
  /usr/bin/python3 bench/torch_train.py --model vit-tiny --seed 0 --export-init vit0.onnx
      (the model `train` starts from with that seed, as ONNX: `qsearch train --model vit0.onnx`
      then trains from PyTorch's initial weights, separating the initialisation's random
      stream from the training itself)

The recipe is qsearch's (docs/training.md): CrossEntropyLoss (mean), Adam/AdamW/SGD, a
CosineAnnealingLR(T_max=epochs, eta_min) stepped once per epoch, shuffled batches without
drop_last, validation after every epoch, the best epoch by validation loss kept; the reported
test accuracy is that model's. Pixels are /255 in [0, 1] (what qsearch's data module feeds).
"""
import argparse
import copy
import gzip
import io
import json
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn as nn

# --------------------------------------------------------------------------------------------
# The zoo (src/train/zoo.h), module names chosen so torch.onnx names nodes as qsearch does.
# --------------------------------------------------------------------------------------------


class JscTiny(nn.Module):
    def __init__(self, f=16, c=5):
        super().__init__()
        self.seq_blocks = nn.Sequential(nn.BatchNorm1d(f), nn.ReLU(), nn.Linear(f, c), nn.ReLU())

    def forward(self, x):
        return self.seq_blocks(x)


class JscToy(nn.Module):
    def __init__(self, f=16, c=5):
        super().__init__()
        self.seq_blocks = nn.Sequential(
            nn.BatchNorm1d(f), nn.ReLU(), nn.Linear(f, 8), nn.BatchNorm1d(8), nn.ReLU(),
            nn.Linear(8, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, c), nn.BatchNorm1d(c),
            nn.ReLU())

    def forward(self, x):
        return self.seq_blocks(x)


class JscS(nn.Module):
    def __init__(self, f=16, c=5):
        super().__init__()
        self.module_list = nn.ModuleList([
            nn.BatchNorm1d(f), nn.ReLU(), nn.Linear(f, 64), nn.BatchNorm1d(64), nn.ReLU(),
            nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 32), nn.ReLU(), nn.Linear(32, 32),
            nn.ReLU(), nn.Linear(32, c), nn.BatchNorm1d(c), nn.ReLU()])

    def forward(self, x):
        for m in self.module_list:
            x = m(x)
        return x


class JscTrt(nn.Module):
    def __init__(self, f=16, c=5):
        super().__init__()
        self.seq_blocks = nn.Sequential(
            nn.BatchNorm1d(f), nn.ReLU(), nn.Linear(f, 32), nn.BatchNorm1d(32), nn.ReLU(),
            nn.Linear(32, 48), nn.BatchNorm1d(48), nn.ReLU(), nn.Dropout(0.5), nn.Linear(48, 16),
            nn.BatchNorm1d(16), nn.ReLU(), nn.Linear(16, c), nn.BatchNorm1d(c), nn.ReLU())

    def forward(self, x):
        return self.seq_blocks(x)


class JscHls4ml(nn.Module):
    def __init__(self, f=16, c=5):
        super().__init__()
        self.fc1, self.relu1 = nn.Linear(f, 64), nn.ReLU()
        self.fc2, self.relu2 = nn.Linear(64, 32), nn.ReLU()
        self.fc3, self.relu3 = nn.Linear(32, 32), nn.ReLU()
        self.fc4 = nn.Linear(32, c)

    def forward(self, x):
        x = self.relu1(self.fc1(x))
        x = self.relu2(self.fc2(x))
        return self.fc4(self.relu3(self.fc3(x)))


class Toy(nn.Module):
    def __init__(self, d=784, c=10):
        super().__init__()
        self.seq_blocks = nn.Sequential(nn.Linear(d, 8), nn.ReLU(), nn.Linear(8, 8), nn.ReLU(),
                                        nn.Linear(8, c))

    def forward(self, x):
        return self.seq_blocks(torch.flatten(x, 1))


class Mlp(nn.Module):
    def __init__(self, d=784, c=10):
        super().__init__()
        self.fc1, self.relu1 = nn.Linear(d, 256), nn.ReLU()
        self.fc2, self.relu2 = nn.Linear(256, 128), nn.ReLU()
        self.fc3 = nn.Linear(128, c)

    def forward(self, x):
        x = torch.flatten(x, 1)
        return self.fc3(self.relu2(self.fc2(self.relu1(self.fc1(x)))))


class Lenet5(nn.Module):
    def __init__(self, c=10):
        super().__init__()
        self.conv1, self.relu1, self.pool1 = nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2)
        self.conv2, self.relu2, self.pool2 = nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2)
        self.fc1, self.relu3 = nn.Linear(400, 120), nn.ReLU()
        self.fc2, self.relu4 = nn.Linear(120, 84), nn.ReLU()
        self.fc3 = nn.Linear(84, c)

    def forward(self, x):
        x = self.pool1(self.relu1(self.conv1(x)))
        x = self.pool2(self.relu2(self.conv2(x)))
        x = torch.flatten(x, 1)
        return self.fc3(self.relu4(self.fc2(self.relu3(self.fc1(x)))))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.downsample = None
        if stride != 1 or cin != cout:
            self.downsample = nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False),
                                            nn.BatchNorm2d(cout))
        self.conv1 = nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
        self.bn1, self.relu1 = nn.BatchNorm2d(cout), nn.ReLU()
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.bn2, self.relu2 = nn.BatchNorm2d(cout), nn.ReLU()

    def forward(self, x):
        shortcut = x if self.downsample is None else self.downsample(x)
        y = self.bn2(self.conv2(self.relu1(self.bn1(self.conv1(x)))))
        return self.relu2(y + shortcut)


class ResnetS(nn.Module):
    def __init__(self, c=10):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 16, 3, 1, 1, bias=False)
        self.bn1, self.relu = nn.BatchNorm2d(16), nn.ReLU()
        self.layer1, self.layer2 = BasicBlock(16, 16, 1), BasicBlock(16, 32, 2)
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(32, c)

    def forward(self, x):
        x = self.layer2(self.layer1(self.relu(self.bn1(self.conv1(x)))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


class Attention(nn.Module):
    """Multi-head self-attention with separate q/k/v/out projections, heads batched in MatMul."""

    def __init__(self, d, heads):
        super().__init__()
        self.heads, self.dh = heads, d // heads
        self.q_proj, self.k_proj = nn.Linear(d, d), nn.Linear(d, d)
        self.v_proj, self.out_proj = nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, x):
        b, t, d = x.shape
        q = self.q_proj(x).reshape(b, t, self.heads, self.dh).transpose(1, 2)
        k = self.k_proj(x).reshape(b, t, self.heads, self.dh).permute(0, 2, 3, 1)
        v = self.v_proj(x).reshape(b, t, self.heads, self.dh).transpose(1, 2)
        s = (q @ k) * self.dh ** -0.5
        o = s.softmax(-1) @ v
        return self.out_proj(o.transpose(1, 2).reshape(b, t, d))


class Mlp2(nn.Module):
    def __init__(self, d, hidden):
        super().__init__()
        self.fc1, self.act, self.fc2 = nn.Linear(d, hidden), nn.GELU(), nn.Linear(hidden, d)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class EncoderBlock(nn.Module):
    def __init__(self, d, heads, hidden):
        super().__init__()
        self.norm1, self.attn = nn.LayerNorm(d), Attention(d, heads)
        self.norm2, self.mlp = nn.LayerNorm(d), Mlp2(d, hidden)

    def forward(self, x):
        x = x + self.attn(self.norm1(x))
        return x + self.mlp(self.norm2(x))


class VitTiny(nn.Module):
    def __init__(self, c=10, d=64, patch=7, tokens=16, heads=4, hidden=128, depth=2):
        super().__init__()
        self.d = d
        self.patch_embed = nn.Conv2d(1, d, patch, patch)
        self.pos_embed = nn.Parameter(torch.zeros(1, tokens, d))
        self.blocks = nn.Sequential(*[EncoderBlock(d, heads, hidden) for _ in range(depth)])
        self.norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, c)

    def forward(self, x):
        x = self.patch_embed(x)
        x = x.reshape(x.shape[0], self.d, -1).transpose(1, 2) + self.pos_embed
        return self.head(self.norm(self.blocks(x)).mean(1))


class DwSeparable(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.dw = nn.Conv2d(cin, cin, 3, stride, 1, groups=cin, bias=False)
        self.bn1, self.relu1 = nn.BatchNorm2d(cin), nn.ReLU()
        self.pw = nn.Conv2d(cin, cout, 1, bias=False)
        self.bn2, self.relu2 = nn.BatchNorm2d(cout), nn.ReLU()

    def forward(self, x):
        return self.relu2(self.bn2(self.pw(self.relu1(self.bn1(self.dw(x))))))


class MobilenetS(nn.Module):
    def __init__(self, c=10):
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, 3, 2, 1, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            DwSeparable(16, 32, 1), DwSeparable(32, 64, 2), DwSeparable(64, 64, 1))
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(64, c)

    def forward(self, x):
        return self.fc(torch.flatten(self.pool(self.features(x)), 1))


ZOO = {  # name -> (constructor, example input shape per sample)
    "jsc-tiny": (JscTiny, (16,)),
    "jsc-toy": (JscToy, (16,)),
    "jsc-s": (JscS, (16,)),
    "jsc-trt": (JscTrt, (16,)),
    "jsc-hls4ml": (JscHls4ml, (16,)),
    "toy": (Toy, (1, 28, 28)),
    "mlp": (Mlp, (1, 28, 28)),
    "lenet5": (Lenet5, (1, 28, 28)),
    "resnet-s": (ResnetS, (1, 28, 28)),
    "vit-tiny": (VitTiny, (1, 28, 28)),
    "mobilenet-s": (MobilenetS, (1, 28, 28)),
}

KEEP_OPS = {"Gemm", "MatMul", "Conv", "BatchNormalization", "Relu", "MaxPool", "AveragePool",
            "GlobalAveragePool", "Flatten", "Reshape", "Add", "Dropout", "Transpose", "Softmax",
            "Mul", "ReduceMean"}
# Modules opset 13 writes as several ops, which qsearch's importer fuses into one node named
# "<scope>/<op>" (LayerNorm: ReduceMean .. Add; GELU: Div, Erf, Add, Mul, Mul).
FUSED = {nn.LayerNorm: "LayerNormalization", nn.GELU: "Gelu"}


def qsearch_node_names(model, graph):
    """Node names as qsearch sees the export: shape arithmetic dropped, fused modules one node."""
    modules = dict(model.named_modules())
    names = []
    for n in graph.node:
        scope = n.name.rsplit("/", 1)[0]
        path = ""  # "/blocks/blocks.0/norm1" -> "blocks.0.norm1"
        for part in scope.split("/")[1:]:
            path = part if not path or part.startswith(path + ".") else f"{path}.{part}"
        module = modules.get(path) if path else None
        fused = next((op for t, op in FUSED.items() if isinstance(module, t)), None)
        if fused:
            if f"{scope}/{fused}" not in names:
                names.append(f"{scope}/{fused}")
        elif isinstance(module, nn.Linear) and n.op_type == "Transpose":
            continue  # the weight's transpose (constant: the importer folds it)
        elif n.op_type in KEEP_OPS:
            names.append(n.name)
    return names


def dump_names(path):
    import onnx
    lines = []
    for name, (ctor, shape) in ZOO.items():
        model = ctor()
        model.train()
        buf = io.BytesIO()
        torch.onnx.export(model, torch.randn(4, *shape), buf, opset_version=13,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                          training=torch.onnx.TrainingMode.TRAINING, do_constant_folding=False)
        graph = onnx.load_from_string(buf.getvalue()).graph
        lines.append(f"model {name}")
        lines += qsearch_node_names(model, graph)
        print(f"{name}: {sum(p.numel() for p in model.parameters())} parameters", file=sys.stderr)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------------
# Data: the IDX files qsearch reads (pixels / 255, float32, [N, 1, 28, 28]).
# --------------------------------------------------------------------------------------------


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find_file(dirs, stem):
    for d in dirs:
        for ext in ("", ".gz"):
            p = os.path.join(d, stem + ext)
            if os.path.exists(p):
                return p
    raise SystemExit(f"cannot find {stem} in {dirs}; run scripts/setup.sh")


def load_images(dataset, data_dir):
    if dataset == "mnist":
        dirs = [os.path.join(data_dir, "mnist")]
    elif dataset == "fashion-mnist":
        dirs = [os.path.join(data_dir, "fashion-mnist"), "/usr/share/datasets/fashion-mnist"]
    else:
        raise SystemExit(f"unsupported data set {dataset}")
    out = {}
    for split, stem in (("train", "train"), ("test", "t10k")):
        x = read_idx(find_file(dirs, f"{stem}-images-idx3-ubyte")).astype(np.float32) / 255.0
        y = read_idx(find_file(dirs, f"{stem}-labels-idx1-ubyte")).astype(np.int64)
        out[split] = (torch.from_numpy(x.reshape(-1, 1, 28, 28).copy()), torch.from_numpy(y.copy()))
    return out


# --------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------


def evaluate(model, x, y, batch):
    model.eval()
    loss, correct = 0.0, 0
    with torch.no_grad():
        for i in range(0, len(x), batch):
            z = model(x[i:i + batch])
            loss += nn.functional.cross_entropy(z, y[i:i + batch], reduction="sum").item()
            correct += (z.argmax(1) == y[i:i + batch]).sum().item()
    return loss / len(x), correct / len(x)


def train(args):
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data_dir = args.data_dir or os.environ.get("QSEARCH_DATA") or os.path.expanduser(
        "~/.cache/qsearch/data")
    data = load_images(args.dataset, data_dir)
    xtr, ytr = data["train"]
    xte, yte = data["test"]
    model = ZOO[args.model][0]()
    if args.optimizer == "adam":
        opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    elif args.optimizer == "adamw":
        opt = torch.optim.AdamW(model.parameters(), lr=args.lr, weight_decay=args.weight_decay)
    else:
        opt = torch.optim.SGD(model.parameters(), lr=args.lr, momentum=args.momentum,
                              weight_decay=args.weight_decay, nesterov=args.nesterov)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=args.epochs,
                                                       eta_min=args.eta_min)
    gen = torch.Generator().manual_seed(args.seed)
    loss_fn = nn.CrossEntropyLoss()
    best = (math.inf, None, -1)
    epochs = []
    for epoch in range(args.epochs):
        model.train()
        t0 = time.perf_counter()
        perm = torch.randperm(len(xtr), generator=gen)
        seen, loss_sum = 0, 0.0
        for i in range(0, len(xtr), args.batch_size):
            idx = perm[i:i + args.batch_size]
            xb, yb = xtr[idx], ytr[idx]
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(model(xb), yb)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            seen += len(idx)
        train_seconds = time.perf_counter() - t0
        sched.step()
        val_loss, val_acc = evaluate(model, xte, yte, 1024)
        epochs.append({"epoch": epoch + 1, "train_loss": loss_sum / seen,
                       "train_seconds": train_seconds, "val_loss": val_loss,
                       "val_accuracy": val_acc})
        print(f"epoch {epoch + 1}/{args.epochs}: train loss {loss_sum / seen:.4f} "
              f"{train_seconds:.2f}s ({seen / train_seconds:.0f} samples/s), val loss "
              f"{val_loss:.4f} acc {val_acc:.4f}", file=sys.stderr)
        if val_loss < best[0]:
            best = (val_loss, copy.deepcopy(model.state_dict()), epoch + 1)
    model.load_state_dict(best[1])
    test_loss, test_acc = evaluate(model, xte, yte, 1024)
    result = {"framework": "pytorch", "torch": torch.__version__, "model": args.model,
              "dataset": args.dataset, "seed": args.seed, "threads": args.threads,
              "epochs": epochs, "best_epoch": best[2], "test_loss": test_loss,
              "test_accuracy": test_acc,
              "median_train_seconds_per_epoch": float(np.median(
                  [e["train_seconds"] for e in epochs]))}
    if args.json:
        print(json.dumps(result))
    else:
        print(f"best epoch {best[2]}: test loss {test_loss:.6f}, test accuracy {test_acc:.6f}")


def export_init(args):
    torch.manual_seed(args.seed)  # as train() does before building the model
    ctor, shape = ZOO[args.model]
    model = ctor()
    model.train()  # BatchNorm stays a node with its statistics as inputs
    torch.onnx.export(model, torch.zeros(2, *shape), args.export_init, opset_version=13,
                      input_names=["input"], output_names=["output"],
                      dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                      training=torch.onnx.TrainingMode.TRAINING)


def grad_reference(prefix):
    """PyTorch's gradients of one training step of vit-tiny and mobilenet-s (the zoo's PyTorch
    twins, random weights, a batch of 4 random images): PREFIX_<model>.onnx (the model, opset 13,
    training mode kept for BatchNorm statistics) and PREFIX_<model>.json (input, labels, loss,
    dL/dinput and dL/dparam per ONNX initializer, in the initializer's layout; gradients as
    [index, value] pairs of at most 48 evenly spaced elements per tensor, to keep the file small)."""
    import onnx
    from onnx import numpy_helper

    def sampled(a):
        flat = a.reshape(-1)
        step = max(1, flat.size // 48)
        return [[i, float(f"{flat[i]:.9g}")] for i in range(0, flat.size, step)]

    for name in ("vit-tiny", "mobilenet-s"):
        torch.manual_seed(3)
        ctor, shape = ZOO[name]
        model = ctor()
        with torch.no_grad():  # parameters that start constant: make every one distinct
            if name == "vit-tiny":
                model.pos_embed.normal_(0, 0.5)
            for m in model.modules():
                if isinstance(m, (nn.LayerNorm, nn.BatchNorm2d)):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.uniform_(-0.5, 0.5)
        model.train()
        buf = io.BytesIO()
        torch.onnx.export(model, torch.randn(4, *shape), buf, opset_version=13,
                          input_names=["input"], output_names=["output"],
                          dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                          training=torch.onnx.TrainingMode.TRAINING)
        proto = onnx.load_from_string(buf.getvalue())
        inits = {i.name: numpy_helper.to_array(i) for i in proto.graph.initializer}
        x = torch.rand(4, *shape, requires_grad=True)
        y = torch.tensor([1, 7, 3, 0])
        loss = nn.functional.cross_entropy(model(x), y)
        loss.backward()
        grads = {}
        own = {n for n, _ in model.named_parameters()} | {n for n, _ in model.named_buffers()}
        for pname, prm in model.named_parameters():
            w = prm.detach().numpy()
            if pname in inits:
                grads[pname] = sampled(prm.grad.numpy())
                continue
            for iname, arr in inits.items():
                if iname in own:
                    continue
                if arr.shape == w.shape and np.array_equal(arr, w):
                    grads[iname] = sampled(prm.grad.numpy())
                elif w.ndim == 2 and arr.shape == w.T.shape and np.array_equal(arr, w.T):
                    grads[iname] = sampled(prm.grad.numpy().T)
        assert len(grads) == len(list(model.parameters())), (name, sorted(grads))
        with open(f"{prefix}_{name}.onnx", "wb") as f:
            f.write(buf.getvalue())
        with open(f"{prefix}_{name}.json", "w") as f:
            json.dump({"input": [float(f"{v:.9g}") for v in x.detach().numpy().reshape(-1)],
                       "labels": y.tolist(), "loss": loss.item(),
                       "input_grad": sampled(x.grad.numpy()), "grads": grads}, f)
        print(f"{name}: loss {loss.item():.6f}, {len(grads)} parameter gradients", file=sys.stderr)


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--dump-names", metavar="PATH")
    p.add_argument("--export-init", metavar="PATH",
                   help="write the seeded initial model of --model as ONNX (opset 13) and exit")
    p.add_argument("--grad-reference", metavar="PREFIX",
                   help="write PREFIX_<model>.onnx/.json: PyTorch's gradients of one step")
    p.add_argument("--model", default="mlp", choices=sorted(ZOO))
    p.add_argument("--dataset", default="mnist")
    p.add_argument("--data-dir", default="")
    p.add_argument("--epochs", type=int, default=5)
    p.add_argument("--batch-size", type=int, default=256)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--optimizer", default="adam", choices=["adam", "adamw", "sgd"])
    p.add_argument("--weight-decay", type=float, default=0.0)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--nesterov", action="store_true")
    p.add_argument("--eta-min", type=float, default=1e-6)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--json", action="store_true")
    args = p.parse_args()
    if args.dump_names:
        dump_names(args.dump_names)
    elif args.grad_reference:
        grad_reference(args.grad_reference)
    elif args.export_init:
        export_init(args)
    else:
        train(args)


if __name__ == "__main__":
    main()
