#!/usr/bin/python3
"""Opset 18-21 fixtures (issue 14): small models in the node forms that ONNX opsets 18, 19, 20
and 21 define, with PyTorch's outputs computed from the same weights.

Debian's ONNX (1.12) and torch (1.13) write opsets up to 17 only, so the models are built node
by node with onnx.helper (opset_import set to the newer version, IR version to match) instead of
torch.onnx.export; PyTorch computes the reference outputs with the same weights and the
operators' definitions (each model's `forward` below). No ONNX checker runs here: ONNX 1.12 has
no schema for the newer forms.

Regenerate every file under tests/fixtures/newer_opsets/ with (from the repository root):

    /usr/bin/python3 tools/make_opset18_fixtures.py

Models (each <name>.onnx; weights random, seeded):
  opset18_cnn      Conv -> Relu -> Pad (axes input [2, 3], edge) -> Resize (axes [2, 3], scales,
                   nearest) -> Split (num_outputs=2, 5 channels: 3 + 2) -> ReduceMean (axes
                   input) / ReduceMax (axes input) -> Add -> Flatten.
  opset18_split_uneven  Split(num_outputs=3) of 7 features (3, 3, 1) -> Relu / Sigmoid / Tanh ->
                   Concat.
  opset19_pool     Conv -> AveragePool (dilations [2, 2]) -> Cast (saturate=1, to FLOAT) -> Pad
                   (axes input [-1], constant 0.5) -> Reshape -> Identity -> Gemm.
  opset20_gelu     Gemm -> Gelu (approximate none) -> Gemm -> Gelu (tanh) -> Gemm.
  opset21_mix      Conv -> Transpose -> Flatten -> Gemm -> Unsqueeze -> Gelu -> Squeeze ->
                   Sub of the ReduceMean (axes input) -> Reshape to a Shape computation
                   [N, -1, 2] -> Cast -> Flatten.

Output newer_ref.json: {"models": {name: {"file", "opset", "input_shape", "input": flat list,
"float": flat list, "output_shape"}}}. The input values are multiples of 2^-5 in [-2, 2).
"""

import argparse
import json
import os

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

IR_OF_OPSET = {18: 8, 19: 9, 20: 9, 21: 10}


class Builder:
    def __init__(self, opset, in_shape, seed):
        self.opset = opset
        self.in_shape = in_shape
        self.nodes, self.inits = [], []
        self.rng = np.random.default_rng(seed)
        self.weights = {}

    def weight(self, name, shape, scale=0.5):
        w = (self.rng.standard_normal(shape) * scale).astype(np.float32)
        self.inits.append(numpy_helper.from_array(w, name))
        self.weights[name] = torch.from_numpy(w)
        return name

    def ints(self, name, values):
        self.inits.append(numpy_helper.from_array(np.array(values, dtype=np.int64), name))
        return name

    def floats(self, name, values):
        self.inits.append(numpy_helper.from_array(np.array(values, dtype=np.float32), name))
        return name

    def node(self, op, inputs, outputs, name, **attrs):
        self.nodes.append(helper.make_node(op, inputs, outputs, name=name, **attrs))
        return outputs[0]

    def model(self, out, out_rank):
        x = helper.make_tensor_value_info("input", TensorProto.FLOAT,
                                          ["batch"] + list(self.in_shape[1:]))
        y = helper.make_tensor_value_info(out, TensorProto.FLOAT,
                                          ["batch"] + [None] * (out_rank - 1))
        g = helper.make_graph(self.nodes, "newer_opset", [x], [y], self.inits)
        m = helper.make_model(g, opset_imports=[helper.make_opsetid("", self.opset)],
                              producer_name="make_opset18_fixtures")
        m.ir_version = IR_OF_OPSET[self.opset]
        return m


def opset18_cnn(seed):
    b = Builder(18, [3, 3, 6, 6], seed)
    b.weight("w", [5, 3, 3, 3])
    b.weight("bias", [5])
    h = b.node("Conv", ["input", "w", "bias"], ["c"], "/conv/Conv", pads=[1, 1, 1, 1])
    h = b.node("Relu", [h], ["r"], "/Relu")
    h = b.node("Pad", [h, b.ints("pads", [1, 0, 2, 1]), "", b.ints("pad_axes", [2, 3])], ["p"],
               "/Pad", mode="edge")
    h = b.node("Resize", [h, "", b.floats("scales", [2.0, 2.0])], ["up"], "/up/Resize",
               axes=[2, 3], mode="nearest", coordinate_transformation_mode="asymmetric",
               nearest_mode="floor", antialias=0, keep_aspect_ratio_policy="stretch")
    b.node("Split", [h], ["s0", "s1"], "/Split", axis=1, num_outputs=2)
    m = b.node("ReduceMean", ["s0", b.ints("axes_mean", [1])], ["m"], "/ReduceMean", keepdims=1)
    x = b.node("ReduceMax", ["s1", b.ints("axes_max", [-3])], ["mx"], "/ReduceMax", keepdims=1)
    h = b.node("Add", [m, x], ["a"], "/Add")
    b.node("Flatten", [h], ["output"], "/Flatten", axis=1)

    def forward(t):
        h = F.relu(F.conv2d(t, b.weights["w"], b.weights["bias"], padding=1))
        h = F.pad(h, (0, 1, 1, 2), mode="replicate")  # W: (begin 0, end 1), H: (1, 2)
        h = F.interpolate(h, scale_factor=2, mode="nearest")
        s0, s1 = torch.split(h, [3, 2], dim=1)
        h = s0.mean(dim=1, keepdim=True) + s1.amax(dim=1, keepdim=True)
        return torch.flatten(h, 1)

    return b, forward, 2


def opset18_split_uneven(seed):
    b = Builder(18, [4, 7], seed)
    b.node("Split", ["input"], ["a", "b", "c"], "/Split", axis=-1, num_outputs=3)
    b.node("Relu", ["a"], ["ra"], "/Relu")
    b.node("Sigmoid", ["b"], ["sb"], "/Sigmoid")
    b.node("Tanh", ["c"], ["tc"], "/Tanh")
    b.node("Concat", ["tc", "ra", "sb"], ["output"], "/Concat", axis=1)

    def forward(t):
        a, s, c = torch.split(t, [3, 3, 1], dim=1)
        return torch.cat([torch.tanh(c), F.relu(a), torch.sigmoid(s)], dim=1)

    return b, forward, 2


def opset19_pool(seed):
    b = Builder(19, [3, 2, 9, 9], seed)
    b.weight("w", [4, 2, 3, 3])
    h = b.node("Conv", ["input", "w"], ["c"], "/conv/Conv")
    h = b.node("AveragePool", [h], ["ap"], "/pool/AveragePool", kernel_shape=[2, 3],
               dilations=[2, 2], strides=[1, 2])
    h = b.node("Cast", [h], ["cast"], "/Cast", to=TensorProto.FLOAT, saturate=1)
    h = b.node("Pad", [h, b.ints("pads", [1, 2]), b.floats("pad_value", [0.5]),
                       b.ints("pad_axes", [-1])], ["p"], "/Pad", mode="constant")
    h = b.node("Reshape", [h, b.ints("shape", [0, -1])], ["flat"], "/Reshape")
    h = b.node("Identity", [h], ["id"], "/Identity")
    b.weight("fc_w", [6, 4 * 5 * 5], scale=0.2)  # [N, 4, 5, 2 + 3]
    b.weight("fc_b", [6])
    b.node("Gemm", [h, "fc_w", "fc_b"], ["output"], "/fc/Gemm", transB=1)

    def forward(t):
        h = F.conv2d(t, b.weights["w"])
# AveragePool with dilations: the mean of the dilated window (unfold computes it).
        n, c, hh, ww = h.shape
        cols = F.unfold(h, kernel_size=(2, 3), dilation=2, stride=(1, 2))
        oh = (hh - 2 * (2 - 1) - 1) // 1 + 1
        ow = (ww - 2 * (3 - 1) - 1) // 2 + 1
        h = cols.view(n, c, 6, oh * ow).mean(dim=2).view(n, c, oh, ow)
        h = F.pad(h, (1, 2), value=0.5)
        h = h.reshape(n, -1)
        return F.linear(h, b.weights["fc_w"], b.weights["fc_b"])

    return b, forward, 2


def opset20_gelu(seed):
    b = Builder(20, [5, 12], seed)
    for i, (o, k) in enumerate([(16, 12), (16, 16), (4, 16)]):
        b.weight(f"w{i}", [o, k])
        b.weight(f"b{i}", [o])
    h = b.node("Gemm", ["input", "w0", "b0"], ["h0"], "/fc0/Gemm", transB=1)
    h = b.node("Gelu", [h], ["g0"], "/act0/Gelu")
    h = b.node("Gemm", [h, "w1", "b1"], ["h1"], "/fc1/Gemm", transB=1)
    h = b.node("Gelu", [h], ["g1"], "/act1/Gelu", approximate="tanh")
    b.node("Gemm", [h, "w2", "b2"], ["output"], "/fc2/Gemm", transB=1)

    def forward(t):
        w = b.weights
        h = F.gelu(F.linear(t, w["w0"], w["b0"]))
        h = F.gelu(F.linear(h, w["w1"], w["b1"]), approximate="tanh")
        return F.linear(h, w["w2"], w["b2"])

    return b, forward, 2


def opset21_mix(seed):
    b = Builder(21, [2, 2, 5, 4], seed)
    b.weight("w", [3, 2, 2, 2])
    h = b.node("Conv", ["input", "w"], ["c"], "/conv/Conv")  # [N, 3, 4, 3]
    h = b.node("Transpose", [h], ["t"], "/Transpose", perm=[0, 2, 3, 1])  # [N, 4, 3, 3]
    h = b.node("Flatten", [h], ["f"], "/Flatten", axis=1)  # [N, 36]
    b.weight("fc_w", [8, 36], scale=0.3)
    h = b.node("Gemm", [h, "fc_w"], ["fc"], "/fc/Gemm", transB=1)
    h = b.node("Unsqueeze", [h, b.ints("ax1", [1])], ["u"], "/Unsqueeze")  # [N, 1, 8]
    h = b.node("Gelu", [h], ["g"], "/act/Gelu")
    h = b.node("Squeeze", [h, b.ints("ax2", [1])], ["s"], "/Squeeze")  # [N, 8]
    h = b.node("ReduceMean", [h, b.ints("ax3", [-1])], ["mean"], "/ReduceMean", keepdims=1)
    h = b.node("Sub", ["s", h], ["centred"], "/Sub")
    b.node("Shape", ["input"], ["shp"], "/Shape", start=0, end=1)
    b.node("Concat", ["shp", b.ints("minus1", [-1]), b.ints("two", [2])], ["target"],
           "/Concat", axis=0)
    b.node("Reshape", ["centred", "target"], ["r"], "/Reshape")  # [N, 4, 2]
    b.node("Cast", ["r"], ["cast"], "/Cast", to=TensorProto.FLOAT)
    b.node("Flatten", ["cast"], ["output"], "/Flatten_1", axis=1)

    def forward(t):
        h = F.conv2d(t, b.weights["w"]).permute(0, 2, 3, 1).flatten(1)
        h = F.gelu(F.linear(h, b.weights["fc_w"]))
        h = h - h.mean(dim=-1, keepdim=True)
        return h.reshape(t.shape[0], -1, 2).flatten(1)

    return b, forward, 2


MODELS = {
    "opset18_cnn": opset18_cnn,
    "opset18_split_uneven": opset18_split_uneven,
    "opset19_pool": opset19_pool,
    "opset20_gelu": opset20_gelu,
    "opset21_mix": opset21_mix,
}


def flat(t):
    return [float(v) for v in t.detach().reshape(-1).tolist()]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", default="tests/fixtures/newer_opsets")
    args = ap.parse_args()
    torch.set_num_threads(1)
    os.makedirs(args.out, exist_ok=True)
    ref = {"models": {}}
    for i, (name, make) in enumerate(MODELS.items()):
        torch.manual_seed(2000 + i)
        b, forward, _ = make(2000 + i)
        m = b.model("output", 2)
        f = f"{name}.onnx"
        onnx.save(m, os.path.join(args.out, f))
        x = torch.randint(-64, 64, b.in_shape).float() / 32.0
        with torch.no_grad():
            y = forward(x)
        ref["models"][name] = {"file": f, "opset": b.opset, "input_shape": b.in_shape,
                               "input": flat(x), "float": flat(y), "output_shape": list(y.shape)}
    with open(os.path.join(args.out, "newer_ref.json"), "w") as fh:
        json.dump(ref, fh, indent=None, separators=(",", ":"))
        fh.write("\n")


if __name__ == "__main__":
    main()
