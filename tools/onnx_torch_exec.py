#!/usr/bin/env python3
"""A small ONNX interpreter over PyTorch, independent of qsearch, for checking its exports.

It runs the default-domain ops qsearch's models and exports contain (Gemm, MatMul, Conv, pooling,
BatchNormalization, views, element-wise and reduction ops, Softmax, LayerNormalization, ...) and
the QONNX custom ops Quant, BipolarQuant and Trunc (domain qonnx.custom_op.general, also
onnx.brevitas / finn.custom_op.general) with the semantics of the QONNX spec and of the `qonnx`
package's execution (custom_op/general/quant.py, bipolar_quant.py, trunc.py):

    Quant(x, scale, zeropt, bitwidth; signed, narrow, rounding_mode):
        y = x / scale + zeropt
        bitwidth == 1 and signed: y = +1 where y >= 0 else -1        (bipolar)
        else: y = rounding(clamp(y, min_int, max_int))
        out = (y - zeropt) * scale
    min_int, max_int: signed [-2^(b-1) + narrow, 2^(b-1) - 1], unsigned [0, 2^b - 1 - narrow]
    rounding_mode: ROUND / HALF_EVEN (numpy.round: half to even), CEIL, FLOOR, UP, DOWN,
                   HALF_UP (half away from zero), HALF_DOWN

Everything computes in float32 (as the qonnx package does on float32 models); int64 tensors of
shape computations stay int64.

Usage:
    onnx_torch_exec.py MODEL.onnx --input X.f32 --shape N,C,H,W --output Y.f32
reads the first N samples of raw little-endian float32 input, runs the model in batches and writes the first
graph output as raw float32 (one row per sample). As a module: run_model(model, x) -> outputs.
"""

import argparse
import math
import sys

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper

QONNX_DOMAINS = {"qonnx.custom_op.general", "onnx.brevitas", "finn.custom_op.general"}


def attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def rounding(mode):
    m = (mode.decode() if isinstance(mode, bytes) else mode).upper()
    table = {
        "ROUND": torch.round,  # half to even, as numpy.round
        "HALF_EVEN": torch.round,
        "CEIL": torch.ceil,
        "FLOOR": torch.floor,
        "UP": lambda v: torch.sign(v) * torch.ceil(torch.abs(v)),
        "DOWN": torch.trunc,
        "HALF_UP": lambda v: torch.sign(v) * torch.floor(torch.abs(v) + 0.5),
        "HALF_DOWN": lambda v: torch.sign(v) * torch.ceil(torch.abs(v) - 0.5),
    }
    if m not in table:
        raise ValueError(f"unknown rounding_mode {m}")
    return table[m]


def int_range(signed, narrow, bits):
    if signed:
        return -(2.0 ** (bits - 1)) + (1 if narrow else 0), 2.0 ** (bits - 1) - 1
    return 0.0, 2.0**bits - 1 - (1 if narrow else 0)


def qonnx_quant(x, scale, zeropt, bitwidth, signed=1, narrow=0, rounding_mode="ROUND"):
    bits = float(bitwidth.reshape(-1)[0])
    y = x / scale + zeropt
    if bits == 1 and signed:
        y = torch.where(y >= 0, torch.ones_like(y), -torch.ones_like(y))
    else:
        lo, hi = int_range(signed, narrow, bits)
        y = torch.clamp(y, lo, hi)
        y = rounding(rounding_mode)(y)
    return (y - zeropt) * scale


def qonnx_bipolar(x, scale):
    return torch.where(x >= 0, torch.ones_like(x), -torch.ones_like(x)) * scale


def qonnx_trunc(x, scale, zeropt, in_bits, out_scale, out_zeropt, out_bits, signed=1, narrow=0,
                rounding_mode="FLOOR"):
    y = torch.round(x / scale + zeropt)
    t = 2.0 ** torch.round(torch.log2(out_scale / scale))
    y = y / t
    lo, hi = int_range(signed, narrow, float(out_bits.reshape(-1)[0]))
    y = rounding(rounding_mode)(torch.clamp(y, lo, hi))
    return (y - zeropt / t) * out_scale


def pads_2d(pads, rank):
    """ONNX pads [b1, b2, ..., e1, e2, ...] as F.pad's (last dim first)."""
    n = rank
    if not pads:
        return [0] * (2 * n)
    out = []
    for d in reversed(range(n)):
        out += [pads[d], pads[d + n]]
    return out


def conv(x, w, b, a):
    nd = w.dim() - 2
    pads = a.get("pads", [0] * (2 * nd))
    if a.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise NotImplementedError("Conv auto_pad")
    x = F.pad(x, pads_2d(pads, nd))
    fn = {1: F.conv1d, 2: F.conv2d, 3: F.conv3d}[nd]
    return fn(x, w, b, stride=a.get("strides", [1] * nd), dilation=a.get("dilations", [1] * nd),
              groups=a.get("group", 1))


def pool(x, a, kind):
    k = a["kernel_shape"]
    nd = len(k)
    pads = a.get("pads", [0] * (2 * nd))
    strides = a.get("strides", [1] * nd)
    ceil = bool(a.get("ceil_mode", 0))
    if kind == "max":
        x = F.pad(x, pads_2d(pads, nd), value=-math.inf)
        fn = {1: F.max_pool1d, 2: F.max_pool2d, 3: F.max_pool3d}[nd]
        return fn(x, k, strides, dilation=a.get("dilations", [1] * nd), ceil_mode=ceil)
    sym = all(pads[d] == pads[d + nd] for d in range(nd))
    if not sym:
        raise NotImplementedError("AveragePool with asymmetric pads")
    fn = {1: F.avg_pool1d, 2: F.avg_pool2d, 3: F.avg_pool3d}[nd]
    return fn(x, k, strides, padding=pads[:nd], ceil_mode=ceil,
              count_include_pad=bool(a.get("count_include_pad", 0)))


def reshape_target(shape, target, allowzero=0):
    out = []
    for i, t in enumerate(target):
        out.append(shape[i] if t == 0 and not allowzero else t)
    if -1 in out:
        known = int(np.prod([d for d in out if d != -1]))
        out[out.index(-1)] = int(np.prod(shape)) // known
    return out


def run_node(node, ins, a, opset):
    op = node.op_type
    if node.domain in QONNX_DOMAINS:
        if op == "Quant":
            return [qonnx_quant(*ins, signed=a.get("signed", 1), narrow=a.get("narrow", 0),
                                rounding_mode=a.get("rounding_mode", "ROUND"))]
        if op == "BipolarQuant":
            return [qonnx_bipolar(*ins)]
        if op == "Trunc":
            return [qonnx_trunc(*ins, signed=a.get("signed", 1), narrow=a.get("narrow", 0),
                                rounding_mode=a.get("rounding_mode", "FLOOR"))]
        raise NotImplementedError(f"QONNX op {op}")
    x = ins[0] if ins else None
    if op == "Gemm":
        A, B = ins[0], ins[1]
        if a.get("transA", 0):
            A = A.t()
        if a.get("transB", 0):
            B = B.t()
        y = a.get("alpha", 1.0) * (A @ B)
        if len(ins) > 2 and ins[2] is not None:
            y = y + a.get("beta", 1.0) * ins[2]
        return [y]
    if op == "MatMul":
        return [torch.matmul(ins[0], ins[1])]
    if op == "Conv":
        return [conv(x, ins[1], ins[2] if len(ins) > 2 else None, a)]
    if op in ("Add", "Sub", "Mul", "Div", "Pow"):
        f = {"Add": torch.add, "Sub": torch.sub, "Mul": torch.mul, "Div": torch.div,
             "Pow": torch.pow}[op]
        return [f(ins[0], ins[1])]
    unary = {"Relu": torch.relu, "Sigmoid": torch.sigmoid, "Tanh": torch.tanh, "Sqrt": torch.sqrt,
             "Erf": torch.erf, "Exp": torch.exp, "Neg": torch.neg, "Identity": lambda v: v,
             "Not": torch.logical_not}
    if op in unary:
        return [unary[op](x)]
    if op == "Dropout":
        return [x] + ([torch.ones_like(x, dtype=torch.bool)] if len(node.output) > 1 else [])
    if op == "LeakyRelu":
        return [F.leaky_relu(x, a.get("alpha", 0.01))]
    if op == "HardSigmoid":
        return [torch.clamp(a.get("alpha", 0.2) * x + a.get("beta", 0.5), 0, 1)]
    if op == "HardSwish":
        return [x * torch.clamp(x / 6 + 0.5, 0, 1)]
    if op == "Clip":
        lo = ins[1] if len(ins) > 1 and ins[1] is not None else a.get("min", -math.inf)
        hi = ins[2] if len(ins) > 2 and ins[2] is not None else a.get("max", math.inf)
        return [torch.clamp(x, float(lo), float(hi))]
    if op == "MaxPool":
        return [pool(x, a, "max")]
    if op == "AveragePool":
        return [pool(x, a, "avg")]
    if op == "GlobalAveragePool":
        return [x.mean(dim=tuple(range(2, x.dim())), keepdim=True)]
    if op == "GlobalMaxPool":
        return [x.amax(dim=tuple(range(2, x.dim())), keepdim=True)]
    if op == "Flatten":
        ax = a.get("axis", 1) % max(x.dim(), 1)
        return [x.reshape(int(np.prod(x.shape[:ax])), -1)]
    if op == "Reshape":
        return [x.reshape(reshape_target(list(x.shape), [int(v) for v in ins[1]],
                                         a.get("allowzero", 0)))]
    if op == "Transpose":
        return [x.permute(*a.get("perm", list(reversed(range(x.dim())))))]
    if op == "BatchNormalization":
        s, b, m, v = ins[1:5]
        shp = [1, -1] + [1] * (x.dim() - 2)
        eps = a.get("epsilon", 1e-5)
        return [(x - m.reshape(shp)) / torch.sqrt(v.reshape(shp) + eps) * s.reshape(shp)
                + b.reshape(shp)]
    if op in ("Softmax", "LogSoftmax"):
        ax = a.get("axis", -1 if opset >= 13 else 1)
        if opset < 13:
            shp = x.shape
            y = x.reshape(int(np.prod(shp[:ax % x.dim()])), -1)
            y = torch.softmax(y, 1) if op == "Softmax" else torch.log_softmax(y, 1)
            return [y.reshape(shp)]
        return [torch.softmax(x, ax) if op == "Softmax" else torch.log_softmax(x, ax)]
    if op == "LayerNormalization":
        ax = a.get("axis", -1) % x.dim()
        shp = list(x.shape[ax:])
        return [F.layer_norm(x, shp, ins[1], ins[2] if len(ins) > 2 else None,
                             a.get("epsilon", 1e-5))]
    if op in ("ReduceMean", "ReduceSum", "ReduceMax"):
        axes = a.get("axes")
        if axes is None and len(ins) > 1 and ins[1] is not None:
            axes = [int(v) for v in ins[1]]
        axes = tuple(axes) if axes else tuple(range(x.dim()))
        keep = bool(a.get("keepdims", 1))
        if op == "ReduceMean":
            return [x.mean(dim=axes, keepdim=keep)]
        if op == "ReduceSum":
            return [x.sum(dim=axes, keepdim=keep)]
        return [x.amax(dim=axes, keepdim=keep)]
    if op == "Constant":
        return [torch.from_numpy(numpy_helper.to_array(a["value"]).copy())]
    if op == "Shape":
        return [torch.tensor(list(x.shape), dtype=torch.int64)]
    if op == "Gather":
        idx = ins[1].long()
        return [torch.index_select(x, a.get("axis", 0) % x.dim(), idx.reshape(-1)).reshape(
            list(x.shape[:a.get("axis", 0) % x.dim()]) + list(idx.shape)
            + list(x.shape[a.get("axis", 0) % x.dim() + 1:]))]
    if op in ("Unsqueeze", "Squeeze"):
        axes = a.get("axes")
        if axes is None and len(ins) > 1 and ins[1] is not None:
            axes = [int(v) for v in ins[1]]
        if op == "Unsqueeze":
            r = x.dim() + len(axes)
            for ax in sorted(v % r for v in axes):
                x = x.unsqueeze(ax)
            return [x]
        if not axes:
            return [x.squeeze()]
        for ax in sorted((v % x.dim() for v in axes), reverse=True):
            x = x.squeeze(ax)
        return [x]
    if op == "Concat":
        return [torch.cat(ins, dim=a["axis"])]
    if op == "Cast":
        to = a["to"]
        dt = {onnx.TensorProto.FLOAT: torch.float32, onnx.TensorProto.INT64: torch.int64,
              onnx.TensorProto.INT32: torch.int32, onnx.TensorProto.BOOL: torch.bool}[to]
        return [x.to(dt)]
    if op == "Slice":
        starts, ends = [int(v) for v in ins[1]], [int(v) for v in ins[2]]
        axes = [int(v) for v in ins[3]] if len(ins) > 3 and ins[3] is not None else list(
            range(len(starts)))
        steps = [int(v) for v in ins[4]] if len(ins) > 4 and ins[4] is not None else [1] * len(
            starts)
        idx = [slice(None)] * x.dim()
        for s, e, ax, st in zip(starts, ends, axes, steps):
            if st != 1:
                raise NotImplementedError("Slice with steps")
            idx[ax % x.dim()] = slice(s, min(e, x.shape[ax % x.dim()]))
        return [x[tuple(idx)]]
    raise NotImplementedError(f"op {op} (node {node.name})")


def run_model(model, x):
    """Runs `model` (onnx.ModelProto) on the float32 array / tensor x; returns the outputs."""
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 13)
    env = {}
    for t in model.graph.initializer:
        arr = numpy_helper.to_array(t)
        env[t.name] = torch.from_numpy(np.array(arr, copy=True))
    inputs = [i for i in model.graph.input if i.name not in env]
    env[inputs[0].name] = torch.as_tensor(np.asarray(x, dtype=np.float32))
    with torch.no_grad():
        for node in model.graph.node:
            ins = [env[n] if n else None for n in node.input]
            outs = run_node(node, ins, attrs(node), opset)
            for name, v in zip(node.output, outs):
                env[name] = v
    return [env[o.name].numpy() for o in model.graph.output]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("model")
    p.add_argument("--input", required=True, help="raw float32 samples")
    p.add_argument("--shape", required=True, help="N,C,H,W of the input")
    p.add_argument("--output", required=True, help="raw float32 of the first graph output")
    p.add_argument("--batch", type=int, default=500)
    args = p.parse_args()
    torch.set_num_threads(1)
    model = onnx.load(args.model)
    onnx.checker.check_model(model)
    shape = [int(v) for v in args.shape.split(",")]
    x = np.fromfile(args.input, dtype="<f4", count=int(np.prod(shape))).reshape(shape)
    outs = []
    for b in range(0, shape[0], args.batch):
        outs.append(run_model(model, x[b:b + args.batch])[0].astype("<f4"))
    np.concatenate(outs).tofile(args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
