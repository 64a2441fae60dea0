#!/usr/bin/python3
"""Trains two small PyTorch models on MNIST and exports them as ONNX test fixtures.

Regenerate every file under tests/fixtures/torch/ with (from the repository root):

    /usr/bin/python3 tools/make_torch_fixtures.py

Options: --data-dir (default ~/.cache/qsearch/data/mnist, the four uncompressed IDX files),
--out (default tests/fixtures/torch). Runs on the CPU with one thread in about a minute and is
deterministic: every random choice is seeded, so the same torch build gives the same files.

Outputs:
  mlp_opset11.onnx  MLP 784-32-16-10 (ReLU); flattens with x.view(x.size(0), -1), which the
                    exporter writes as Shape -> Gather -> Unsqueeze -> Concat -> Reshape.
  mlp_opset13.onnx  the same trained weights, flattening with nn.Flatten (an ONNX Flatten).
  cnn_opset11.onnx, cnn_opset13.onnx
                    conv+batchnorm+relu -> maxpool -> residual block (conv+batchnorm+relu, + skip)
                    -> maxpool -> x.view(x.size(0), -1) -> gemm. BatchNormalization survives
                    export (training=PRESERVE, do_constant_folding=False, model in eval mode).
  <model>_ref.json  PyTorch's eval-mode logits of the first 64 test images, the predictions on
                    all 10000 test images and the test accuracy.
  bad_*.onnx        small hand-made malformed models for the importer's error tests.
"""

import argparse
import json
import os
import struct

import numpy as np
import onnx
import torch
import torch.nn as nn
from onnx import TensorProto, helper

SEED = 0
FIRST_N = 64


def read_idx(path):
    """Reads an uncompressed IDX file into a numpy array (big-endian header, uint8 payload)."""
    with open(path, "rb") as f:
        data = f.read()
    zero, dtype, ndim = struct.unpack(">HBB", data[:4])
    if zero != 0 or dtype != 0x08:
        raise ValueError(f"{path}: not an unsigned-byte IDX file")
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def load_mnist(data_dir, split):
    prefix = "train" if split == "train" else "t10k"
    images = read_idx(os.path.join(data_dir, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(os.path.join(data_dir, f"{prefix}-labels-idx1-ubyte"))
    x = torch.from_numpy(images.astype(np.float32) / np.float32(255.0)).reshape(-1, 1, 28, 28)
    return x, torch.from_numpy(labels.astype(np.int64))


class Mlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(784, 32)
        self.relu1 = nn.ReLU()
        self.fc2 = nn.Linear(32, 16)
        self.relu2 = nn.ReLU()
        self.fc3 = nn.Linear(16, 10)
        self.flatten = nn.Flatten()
        self.use_view = True  # which flatten pattern forward() uses (export only)

    def forward(self, x):
        x = x.view(x.size(0), -1) if self.use_view else self.flatten(x)
        return self.fc3(self.relu2(self.fc2(self.relu1(self.fc1(x)))))


class ResBlock(nn.Module):
    def __init__(self, channels):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)
        self.bn = nn.BatchNorm2d(channels)
        self.relu = nn.ReLU()

    def forward(self, x):
        return self.relu(self.bn(self.conv(x))) + x


class Cnn(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(8)
        self.relu1 = nn.ReLU()
        self.pool1 = nn.MaxPool2d(2)
        self.block = ResBlock(8)
        self.pool2 = nn.MaxPool2d(2)
        self.fc = nn.Linear(8 * 7 * 7, 10)

    def forward(self, x):
        x = self.pool1(self.relu1(self.bn1(self.conv1(x))))
        x = self.pool2(self.block(x))
        return self.fc(x.view(x.size(0), -1))


def train(model, x, y, epochs, lr, batch_size=128):
    gen = torch.Generator().manual_seed(SEED)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for epoch in range(epochs):
        perm = torch.randperm(x.shape[0], generator=gen)
        total = 0.0
        for i in range(0, x.shape[0], batch_size):
            idx = perm[i:i + batch_size]
            opt.zero_grad()
            loss = loss_fn(model(x[idx]), y[idx])
            loss.backward()
            opt.step()
            total += loss.item() * idx.shape[0]
        print(f"  epoch {epoch + 1}: train loss {total / x.shape[0]:.4f}")
    model.eval()


def export(model, path, opset):
    torch.onnx.export(model, torch.zeros(2, 1, 28, 28), path, opset_version=opset,
                      input_names=["input"], output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}},
                      training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)
    onnx.checker.check_model(onnx.load(path))


def write_ref(model, name, files, x_test, y_test, out_dir):
    with torch.no_grad():
        logits = torch.cat([model(x_test[i:i + 1000]) for i in range(0, x_test.shape[0], 1000)])
    pred = logits.argmax(dim=1)
    acc = float((pred == y_test).float().mean())
    ref = {
        "model": name,
        "opset_files": files,
        "input": "mnist test split, pixels/255 as float32, shape [N,1,28,28]",
        "first_n": FIRST_N,
        "logits": [[float(v) for v in row] for row in logits[:FIRST_N].tolist()],
        "test_predictions": [int(p) for p in pred.tolist()],
        "test_accuracy": acc,
    }
    with open(os.path.join(out_dir, f"{name}_ref.json"), "w") as f:
        json.dump(ref, f, separators=(",", ":"))
        f.write("\n")
    print(f"  {name}: test accuracy {acc:.4f}")


def save_raw(model_proto, path):
    # No checker here: these models are wrong on purpose.
    with open(path, "wb") as f:
        f.write(model_proto.SerializeToString())


def tiny_model(nodes, inits, opset=13, inputs=None, outputs=None):
    inputs = inputs or [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])]
    outputs = outputs or [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])]
    graph = helper.make_graph(nodes, "bad", inputs, outputs, initializer=inits)
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="make_torch_fixtures")
    m.ir_version = 7
    return m


def write_malformed(out_dir, source_model):
    with open(source_model, "rb") as f:
        data = f.read()
    # A download cut short: the first 1500 bytes of a real model.
    with open(os.path.join(out_dir, "bad_truncated.onnx"), "wb") as f:
        f.write(data[:1500])

    # An operator qsearch does not support (the checker accepts it). (Resize until issue 11.)
    img = [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 4, 4])]
    save_raw(tiny_model([helper.make_node("Celu", ["x"], ["y"], name="/foo/Celu", alpha=0.5)],
                        [], inputs=img, outputs=[helper.make_tensor_value_info(
                            "y", TensorProto.FLOAT, ["batch", 1, 4, 4])]),
             os.path.join(out_dir, "bad_unsupported_op.onnx"))

    # An attribute value qsearch does not support: MaxPool with storage_order=1.
    pooled = [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 1, 2, 2])]
    save_raw(tiny_model([helper.make_node("MaxPool", ["x"], ["y"], name="/pool/MaxPool",
                                          kernel_shape=[2, 2], strides=[2, 2], storage_order=1)],
                        [], inputs=img, outputs=pooled),
             os.path.join(out_dir, "bad_attr.onnx"))

    # A float64 weight (qsearch computes in float32).
    w = helper.make_tensor("fc.weight", TensorProto.DOUBLE, [4, 4], [0.5] * 16)
    save_raw(tiny_model([helper.make_node("Gemm", ["x", "fc.weight"], ["y"], name="/fc/Gemm",
                                          transB=1)], [w]),
             os.path.join(out_dir, "bad_dtype.onnx"))

    # A node reading a name nothing produces.
    save_raw(tiny_model([helper.make_node("Relu", ["x"], ["h"], name="/relu1/Relu"),
                         helper.make_node("Add", ["h", "ghost"], ["y"], name="/Add")], []),
             os.path.join(out_dir, "bad_dangling.onnx"))

    # Two nodes feeding each other.
    save_raw(tiny_model([helper.make_node("Add", ["x", "b"], ["a"], name="/a/Add"),
                         helper.make_node("Relu", ["a"], ["b"], name="/b/Relu"),
                         helper.make_node("Identity", ["b"], ["y"], name="/Identity")], []),
             os.path.join(out_dir, "bad_cycle.onnx"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data-dir", default=os.path.expanduser("~/.cache/qsearch/data/mnist"))
    parser.add_argument("--out", default="tests/fixtures/torch")
    args = parser.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.set_num_threads(1)

    x_train, y_train = load_mnist(args.data_dir, "train")
    x_test, y_test = load_mnist(args.data_dir, "test")

    print("mlp")
    torch.manual_seed(SEED)
    mlp = Mlp()
    train(mlp, x_train, y_train, epochs=2, lr=2e-3)
    files = ["mlp_opset11.onnx", "mlp_opset13.onnx"]
    mlp.use_view = True
    export(mlp, os.path.join(args.out, files[0]), 11)
    mlp.use_view = False
    export(mlp, os.path.join(args.out, files[1]), 13)
    write_ref(mlp, "mlp", files, x_test, y_test, args.out)

    print("cnn")
    torch.manual_seed(SEED)
    cnn = Cnn()
    train(cnn, x_train, y_train, epochs=1, lr=2e-3)
    files = ["cnn_opset11.onnx", "cnn_opset13.onnx"]
    export(cnn, os.path.join(args.out, files[0]), 11)
    export(cnn, os.path.join(args.out, files[1]), 13)
    write_ref(cnn, "cnn", files, x_test, y_test, args.out)

    write_malformed(args.out, os.path.join(args.out, "cnn_opset13.onnx"))
    total = sum(os.path.getsize(os.path.join(args.out, f)) for f in os.listdir(args.out))
    print(f"wrote {args.out} ({total / 1024:.0f} KiB)")


if __name__ == "__main__":
    main()
