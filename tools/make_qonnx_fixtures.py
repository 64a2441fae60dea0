#!/usr/bin/env python3
"""Writes the QONNX import fixtures of tests/onnx/qonnx_import_test.cc into tests/fixtures/qonnx/.

Hand-built with onnx.helper, in the shape Brevitas's QONNX export gives a quantized MLP
(QuantIdentity on the input, QuantLinear with quantized weight and bias, QuantReLU quantizing the
ReLU's output, unnamed nodes, a scale given by a Constant node), plus one small model per refused
case (scale not a power of two, nonzero zero point, narrow range, BipolarQuant, Trunc, per-channel
scale, a rounding MASE lacks, a Quant where MASE has no format, a node only partly quantized).

brevitas_cnn.onnx: a QuantConv2d / QuantReLU / MaxPool / QuantLinear net whose activation Quant
stands in front of the MaxPool.

brevitas_{mlp,cnn}_x.f32 / _y.f32 hold seeded inputs and the outputs that
tools/onnx_torch_exec.py (QONNX's Quant semantics, independent of qsearch) computes for them.

    /usr/bin/python3 tools/make_qonnx_fixtures.py
"""

import os
import sys

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import onnx_torch_exec  # noqa: E402

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "qonnx")
DOMAIN = "qonnx.custom_op.general"


def f32(name, arr):
    return numpy_helper.from_array(np.asarray(arr, dtype=np.float32), name)


def quant(x, y, scale, zero, bits, signed=1, narrow=0, rounding="ROUND", name="", extra=None):
    inits = [f32(y + "_scale", scale), f32(y + "_zeropt", zero), f32(y + "_bitwidth", bits)]
    node = helper.make_node("Quant", [x, y + "_scale", y + "_zeropt", y + "_bitwidth"], [y],
                            domain=DOMAIN, name=name, signed=signed, narrow=narrow,
                            rounding_mode=rounding)
    return node, inits


def model(nodes, inits, in_dim, out_dim, name):
    g = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", in_dim])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", out_dim])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid(DOMAIN, 1)],
                          producer_name="make_qonnx_fixtures")
    m.ir_version = 7
    onnx.checker.check_model(m)
    return m


def brevitas_mlp(rng):
    w1 = rng.normal(0, 0.4, (12, 16))
    b1 = rng.normal(0, 0.2, 12)
    w2 = rng.normal(0, 0.4, (5, 12))
    b2 = rng.normal(0, 0.2, 5)
    nodes, inits = [], [f32("w1", w1), f32("b1", b1), f32("w2", w2), f32("b2", b2)]
    # QuantIdentity on the input: signed 8 bits, scale 2^-5 (node unnamed, as Brevitas leaves it).
    n, i = quant("x", "x_q", 2.0**-5, 0.0, 8)
    nodes.append(n)
    inits += i
    # QuantLinear: weight s4 with scale 2^-3 given by a Constant node, bias s16 2^-8.
    n, i = quant("w1", "w1_q", 2.0**-3, 0.0, 4, name="Quant_w1")
    n.input[1] = "w1_scale_c"
    inits += [t for t in i if t.name != "w1_q_scale"]
    nodes.append(helper.make_node("Constant", [], ["w1_scale_c"],
                                  value=f32("w1_scale_value", 2.0**-3)))
    nodes.append(n)
    n, i = quant("b1", "b1_q", 2.0**-8, 0.0, 16, name="Quant_b1")
    nodes.append(n)
    inits += i
    nodes.append(helper.make_node("Gemm", ["x_q", "w1_q", "b1_q"], ["h1"], name="fc1", transB=1))
    nodes.append(helper.make_node("Relu", ["h1"], ["r1"]))
    # QuantReLU: the ReLU's output, unsigned 4 bits, scale 2^-2.
    n, i = quant("r1", "r1_q", 2.0**-2, 0.0, 4, signed=0, name="Quant_act1")
    nodes.append(n)
    inits += i
    # QuantLinear with weight s6 2^-5 and a float bias (bias_quant=None).
    n, i = quant("w2", "w2_q", 2.0**-5, 0.0, 6, name="Quant_w2")
    nodes.append(n)
    inits += i
    nodes.append(helper.make_node("Gemm", ["r1_q", "w2_q", "b2"], ["y"], name="fc2", transB=1))
    return model(nodes, inits, 16, 5, "brevitas_mlp")


def brevitas_cnn(rng):
    """QuantConv2d -> QuantReLU -> MaxPool -> Flatten -> QuantLinear: the QuantReLU's Quant sits in
    front of the MaxPool, so its format reaches the linear through the pool and the flatten."""
    w1 = rng.normal(0, 0.5, (4, 1, 3, 3))
    b1 = rng.normal(0, 0.2, 4)
    w2 = rng.normal(0, 0.3, (3, 64))
    b2 = rng.normal(0, 0.2, 3)
    nodes, inits = [], [f32("cw", w1), f32("cb", b1), f32("fw", w2), f32("fb", b2)]
    for x, y, sc, bits, signed in [("x", "x_q", 2.0**-5, 8, 1), ("cw", "cw_q", 2.0**-4, 5, 1),
                                   ("cb", "cb_q", 2.0**-8, 12, 1), ("fw", "fw_q", 2.0**-5, 6, 1)]:
        n, i = quant(x, y, sc, 0.0, bits, signed=signed, name="Quant_" + x)
        nodes.append(n)
        inits += i
    nodes.append(helper.make_node("Conv", ["x_q", "cw_q", "cb_q"], ["c"], name="conv",
                                  kernel_shape=[3, 3], pads=[1, 1, 1, 1]))
    nodes.append(helper.make_node("Relu", ["c"], ["r"], name="relu"))
    n, i = quant("r", "r_q", 2.0**-2, 0.0, 4, signed=0, name="Quant_relu")
    nodes.append(n)
    inits += i
    nodes.append(helper.make_node("MaxPool", ["r_q"], ["p"], name="pool", kernel_shape=[2, 2],
                                  strides=[2, 2]))
    nodes.append(helper.make_node("Flatten", ["p"], ["f"], name="flatten", axis=1))
    nodes.append(helper.make_node("Gemm", ["f", "fw_q", "fb"], ["y"], name="fc", transB=1))
    g = helper.make_graph(
        nodes, "brevitas_cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 1, 8, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 3])], inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13),
                                            helper.make_opsetid(DOMAIN, 1)],
                          producer_name="make_qonnx_fixtures")
    m.ir_version = 7
    onnx.checker.check_model(m)
    return m


def small(kind):
    """x[4] -> Quant -> Gemm(Quant W) -> y[3], with one thing changed by `kind`."""
    rng = np.random.default_rng(7)
    nodes = []
    inits = [f32("w", rng.normal(0, 0.5, (3, 4)))]
    q_in = dict(scale=2.0**-4, zero=0.0, bits=8, signed=1, narrow=0, rounding="ROUND")
    q_w = dict(scale=2.0**-3, zero=0.0, bits=4, signed=1, narrow=0, rounding="ROUND")
    if kind == "scale_not_pow2":
        q_w["scale"] = 0.3
    elif kind == "zeropt":
        q_in["zero"] = 1.0
    elif kind == "narrow":
        q_w["narrow"] = 1
    elif kind == "rounding":
        q_in["rounding"] = "CEIL"
    elif kind == "per_channel":
        q_w["scale"] = np.array([[2.0**-3], [2.0**-4], [2.0**-3]])
    x_in = "x"
    if kind == "placement":  # a Quant on a Softmax's input: MASE has no format there
        nodes.append(helper.make_node("Softmax", ["x"], ["sx"], name="softmax", axis=1))
        n, i = quant("sx", "sx_q", 2.0**-4, 0.0, 8, name="Quant_softmax_out")
        nodes.append(n)
        inits += i
        nodes.append(helper.make_node("Softmax", ["sx_q"], ["ss"], name="softmax2", axis=1))
        x_in = "ss"
    if kind != "partial":
        n, i = quant(x_in, "x_q", q_in["scale"], q_in["zero"], q_in["bits"], q_in["signed"],
                     q_in["narrow"], q_in["rounding"], name="Quant_in")
        nodes.append(n)
        inits += i
        x_in = "x_q"
    if kind == "bipolar":
        inits += [f32("w_bscale", 0.5)]
        nodes.append(helper.make_node("BipolarQuant", ["w", "w_bscale"], ["w_q"], domain=DOMAIN,
                                      name="Bipolar_w"))
    elif kind == "trunc":
        inits += [f32("t_s", 2.0**-3), f32("t_z", 0.0), f32("t_b", 8.0), f32("t_os", 2.0**-1),
                  f32("t_oz", 0.0), f32("t_ob", 4.0)]
        nodes.append(helper.make_node("Trunc", ["w", "t_s", "t_z", "t_b", "t_os", "t_oz", "t_ob"],
                                      ["w_q"], domain=DOMAIN, name="Trunc_w",
                                      rounding_mode="FLOOR"))
    else:
        n, i = quant("w", "w_q", q_w["scale"], q_w["zero"], q_w["bits"], q_w["signed"],
                     q_w["narrow"], q_w["rounding"], name="Quant_w")
        nodes.append(n)
        inits += i
    nodes.append(helper.make_node("Gemm", [x_in, "w_q"], ["y"], name="fc", transB=1))
    return model(nodes, inits, 4, 3, "err_" + kind)


def main():
    os.makedirs(OUT, exist_ok=True)
    rng = np.random.default_rng(2026)
    m = brevitas_mlp(rng)
    onnx.save(m, os.path.join(OUT, "brevitas_mlp.onnx"))
    x = rng.normal(0, 1.5, (64, 16)).astype("<f4")
    y = onnx_torch_exec.run_model(m, x)[0].astype("<f4")
    x.tofile(os.path.join(OUT, "brevitas_mlp_x.f32"))
    y.tofile(os.path.join(OUT, "brevitas_mlp_y.f32"))
    m = brevitas_cnn(rng)
    onnx.save(m, os.path.join(OUT, "brevitas_cnn.onnx"))
    x = rng.normal(0, 1.0, (32, 1, 8, 8)).astype("<f4")
    y = onnx_torch_exec.run_model(m, x)[0].astype("<f4")
    x.tofile(os.path.join(OUT, "brevitas_cnn_x.f32"))
    y.tofile(os.path.join(OUT, "brevitas_cnn_y.f32"))
    for kind in ["scale_not_pow2", "zeropt", "narrow", "rounding", "per_channel", "placement",
                 "partial", "bipolar", "trunc"]:
        onnx.save(small(kind), os.path.join(OUT, f"err_{kind}.onnx"))
    print("wrote", OUT)


if __name__ == "__main__":
    main()
