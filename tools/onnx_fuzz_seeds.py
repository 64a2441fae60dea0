#!/usr/bin/python3
"""Writes small valid ONNX models that together use every operator and attribute form the
importer supports: the seed corpus of tests/fuzz/onnx_import_fuzzer.cc (beside the PyTorch
fixtures) and inputs of tests/onnx/import_ops_test.cc.

Regenerate (from the repository root):

    /usr/bin/python3 tools/onnx_fuzz_seeds.py

Output: tests/fixtures/onnx_fuzz_seeds/*.onnx (a few KB; deterministic, no randomness).

The seeds after the first four cover the operators of issues 11 and 14 (LayerNormalization and
torch's decomposed LayerNorm / GELU, attention MatMuls, Softmax, Gather / Slice / Split / Where /
Expand, GRU / LSTM, 1-D and 3-D Conv and pools, ConvTranspose, Resize, the opset 18-21 node
forms) and QONNX graphs (Quant, BipolarQuant, Trunc in the qonnx.custom_op.general domain).
ONNX 1.12 (Debian) has no schema for opsets above 17, so those seeds are not checked here.
"""

import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = "tests/fixtures/onnx_fuzz_seeds"


def f32(name, shape, start=0.0):
    n = int(np.prod(shape)) if shape else 1
    data = (start + 0.01 * np.arange(n, dtype=np.float32)).reshape(shape)
    return numpy_helper.from_array(data.astype(np.float32), name)


def i64(name, values):
    return numpy_helper.from_array(np.array(values, dtype=np.int64), name)


def model(name, nodes, inits, in_shape, out_shape, opset):
    g = helper.make_graph(
        nodes, name,
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, in_shape)],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, out_shape)],
        initializer=inits)
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="onnx_fuzz_seeds")
    m.ir_version = 6 if opset <= 11 else 7 if opset <= 14 else 8
    onnx.checker.check_model(m)
    onnx.save(m, os.path.join(OUT, name + ".onnx"))


QONNX = "qonnx.custom_op.general"
IR_OF_OPSET = {11: 6, 13: 7, 14: 7, 17: 8, 18: 8, 19: 9, 20: 9, 21: 10}


def graph_model(name, nodes, inits, inputs, outputs, opset, extra_opsets=()):
    """inputs / outputs: lists of (name, elem_type, shape)."""
    g = helper.make_graph(
        nodes, name, [helper.make_tensor_value_info(n, t, s) for n, t, s in inputs],
        [helper.make_tensor_value_info(n, t, s) for n, t, s in outputs], initializer=inits)
    opsets = [helper.make_opsetid("", opset)] + [helper.make_opsetid(d, v) for d, v in extra_opsets]
    m = helper.make_model(g, opset_imports=opsets, producer_name="onnx_fuzz_seeds")
    m.ir_version = IR_OF_OPSET[opset]
    if opset <= 17:
        onnx.checker.check_model(m)
    onnx.save(m, os.path.join(OUT, name + ".onnx"))


def fx(shape):
    return ("x", TensorProto.FLOAT, shape)


def fy(shape):
    return ("y", TensorProto.FLOAT, shape)


def quant(x, y, scale, bits, signed=1, rounding="ROUND"):
    """A QONNX Quant node x -> y and its scale / zero point / bit width initializers."""
    node = helper.make_node("Quant", [x, y + "_s", y + "_z", y + "_b"], [y], domain=QONNX,
                            name="Quant_" + y, signed=signed, narrow=0, rounding_mode=rounding)
    return node, [f32(y + "_s", [], scale), f32(y + "_z", []), f32(y + "_b", [], bits)]


def new_seeds():
    n = helper.make_node
    # Attention block at opset 17: LayerNormalization, q/k/v MatMuls against constants, two
    # heads (Reshape + Transpose), Q x K^T and P x V MatMuls of activations, Softmax on the last
    # axis, scaling Div, residual Add, a MatMul + Add linear.
    model_nodes = [
        n("LayerNormalization", ["x", "ln_s", "ln_b"], ["ln"], name="/ln/LayerNormalization",
          axis=-1, epsilon=1e-5),
        n("MatMul", ["ln", "wq"], ["q"], name="/q/MatMul"),
        n("MatMul", ["ln", "wk"], ["k"], name="/k/MatMul"),
        n("MatMul", ["ln", "wv"], ["v"], name="/v/MatMul"),
        n("Reshape", ["q", "heads"], ["qh"], name="/Reshape"),
        n("Reshape", ["k", "heads"], ["kh"], name="/Reshape_1"),
        n("Reshape", ["v", "heads"], ["vh"], name="/Reshape_2"),
        n("Transpose", ["qh"], ["qt"], name="/Transpose", perm=[0, 2, 1, 3]),
        n("Transpose", ["kh"], ["kt"], name="/Transpose_1", perm=[0, 2, 3, 1]),
        n("Transpose", ["vh"], ["vt"], name="/Transpose_2", perm=[0, 2, 1, 3]),
        n("MatMul", ["qt", "kt"], ["s"], name="/MatMul"),
        n("Div", ["s", "sqrt_d"], ["sd"], name="/Div"),
        n("Softmax", ["sd"], ["p"], name="/Softmax", axis=-1),
        n("MatMul", ["p", "vt"], ["o"], name="/MatMul_1"),
        n("Transpose", ["o"], ["ot"], name="/Transpose_3", perm=[0, 2, 1, 3]),
        n("Reshape", ["ot", "merge"], ["om"], name="/Reshape_3"),
        n("MatMul", ["om", "wo"], ["pr"], name="/out/MatMul"),
        n("Add", ["bo", "pr"], ["pb"], name="/out/Add"),
        n("Add", ["x", "pb"], ["y"], name="/Add"),
    ]
    graph_model("attention_layernorm_opset17", model_nodes, [
        f32("ln_s", [8], 1.0), f32("ln_b", [8]), f32("wq", [8, 8], -0.3), f32("wk", [8, 8], 0.1),
        f32("wv", [8, 8], -0.1), i64("heads", [0, 0, 2, 4]), f32("sqrt_d", [], 2.0),
        i64("merge", [0, 0, 8]), f32("wo", [8, 8], -0.2), f32("bo", [8])],
        [fx(["N", 4, 8])], [fy(["N", 4, 8])], 17)

    # torch.onnx (opset 13) spellings the importer fuses: LayerNorm as ReduceMean, Sub, Pow,
    # ReduceMean, Add, Sqrt, Div, Mul, Add; exact GELU as Div, Erf, Add, Mul, Mul; a tanh GELU
    # spelled with Pow / Tanh; LogSoftmax.
    graph_model("decomposed_ln_gelu_opset13", [
        n("ReduceMean", ["x"], ["mu"], name="/ln/ReduceMean", axes=[-1]),
        n("Sub", ["x", "mu"], ["xc"], name="/ln/Sub"),
        n("Pow", ["xc", "two"], ["sq"], name="/ln/Pow"),
        n("ReduceMean", ["sq"], ["var"], name="/ln/ReduceMean_1", axes=[-1]),
        n("Add", ["var", "eps"], ["ve"], name="/ln/Add"),
        n("Sqrt", ["ve"], ["sd"], name="/ln/Sqrt"),
        n("Div", ["xc", "sd"], ["xn"], name="/ln/Div"),
        n("Mul", ["xn", "ln_s"], ["xs"], name="/ln/Mul"),
        n("Add", ["xs", "ln_b"], ["ln"], name="/ln/Add_1"),
        n("MatMul", ["ln", "w1"], ["h"], name="/fc1/MatMul"),
        n("Div", ["h", "sqrt2"], ["hd"], name="/act/Div"),
        n("Erf", ["hd"], ["he"], name="/act/Erf"),
        n("Add", ["he", "one"], ["h1"], name="/act/Add"),
        n("Mul", ["h", "h1"], ["hm"], name="/act/Mul"),
        n("Mul", ["hm", "half"], ["g"], name="/act/Mul_1"),
        n("ReduceSum", ["g", "axis1"], ["r"], name="/ReduceSum", keepdims=0),
        n("Exp", ["r"], ["e"], name="/Exp"),
        n("Neg", ["e"], ["ne"], name="/Neg"),
        n("LogSoftmax", ["ne"], ["y"], name="/LogSoftmax", axis=-1),
    ], [f32("two", [], 2.0), f32("eps", [], 1e-5), f32("ln_s", [6], 1.0), f32("ln_b", [6]),
        f32("w1", [6, 5], -0.1), f32("sqrt2", [], 1.4142135), f32("one", [], 1.0),
        f32("half", [], 0.5), i64("axis1", [1])],
        [fx(["N", 3, 6])], [fy(["N", 5])], 13)

    # Indexing ops: Gather of a constant table by an int64 input (an embedding) and of an
    # activation by constant indices, Slice with negative starts, axes and steps, Split with a
    # split input, Where with a computed condition (Equal, Not, And), Expand of a constant.
    graph_model("gather_slice_split_where_opset13", [
        n("Gather", ["emb", "ids"], ["e"], name="/emb/Gather", axis=0),
        n("Gather", ["e", "pick"], ["g"], name="/Gather", axis=2),
        n("Slice", ["e", "starts", "ends", "axes", "steps"], ["sl"], name="/Slice"),
        n("Split", ["sl", "parts"], ["a", "b"], name="/Split", axis=2),
        n("Add", ["a", "b"], ["ab"], name="/Add"),
        n("Equal", ["ids", "zero"], ["pad"], name="/Equal"),
        n("Not", ["pad"], ["keep"], name="/Not"),
        n("And", ["keep", "keep"], ["keep2"], name="/And"),
        n("Unsqueeze", ["keep2", "minus1"], ["mask"], name="/Unsqueeze"),
        n("Expand", ["ninf", "shape3"], ["fill"], name="/Expand"),
        n("Where", ["mask", "g", "fill"], ["w"], name="/Where"),
        n("Concat", ["w", "ab"], ["y"], name="/Concat", axis=2),
    ], [f32("emb", [5, 8], -0.2), i64("pick", [0, 3, 5]), i64("starts", [-6]),
        i64("ends", [8]), i64("axes", [2]), i64("steps", [1]), i64("parts", [3, 3]),
        i64("zero", 0), i64("minus1", [-1]), f32("ninf", [1], -1e4), i64("shape3", [1, 1, 3])],
        [("ids", TensorProto.INT64, ["N", 4])], [fy(["N", 4, 6])], 13)

    # Recurrent ops: batch-first input transposed to sequence-first, GRU (linear_before_reset,
    # an empty optional input, both outputs) then a bidirectional LSTM; Squeeze / Transpose /
    # Reshape of their outputs.
    H = 3
    graph_model("gru_lstm_opset14", [
        n("Transpose", ["x"], ["xt"], name="/Transpose_0", perm=[1, 0, 2]),
        n("GRU", ["xt", "gw", "gr", "gb", ""], ["gy", "gh"], name="/gru/GRU",
          hidden_size=H, linear_before_reset=1),
        n("Squeeze", ["gy", "one"], ["gs"], name="/Squeeze"),
        n("LSTM", ["gs", "lw", "lr", "lb"], ["ly", "lh", "lc"], name="/lstm/LSTM",
          hidden_size=H, direction="bidirectional"),
        n("Transpose", ["lh"], ["lt"], name="/Transpose", perm=[1, 0, 2]),
        n("Reshape", ["lt", "flat"], ["lf"], name="/Reshape"),
        n("Squeeze", ["gh", "zero"], ["gq"], name="/Squeeze_1"),
        n("Concat", ["lf", "gq"], ["y"], name="/Concat", axis=1),
    ], [f32("gw", [1, 3 * H, 2], -0.2), f32("gr", [1, 3 * H, H], 0.1),
        f32("gb", [1, 6 * H], -0.1), i64("one", [1]), i64("zero", [0]),
        f32("lw", [2, 4 * H, H], -0.3), f32("lr", [2, 4 * H, H], 0.05),
        f32("lb", [2, 8 * H], 0.1), i64("flat", [0, -1])],
        [fx(["N", 5, 2])], [fy(["N", 3 * H])], 14)

    # 1-D convolution and pools (NCL): Conv with pads / dilation / groups, MaxPool, AveragePool,
    # GlobalMaxPool, Flatten, Gemm.
    graph_model("conv1d_pools_opset13", [
        n("Conv", ["x", "w", "b"], ["c"], name="/conv/Conv", kernel_shape=[3], pads=[1, 1],
          dilations=[2], group=2, strides=[1]),
        n("Relu", ["c"], ["r"], name="/Relu"),
        n("MaxPool", ["r"], ["m"], name="/pool/MaxPool", kernel_shape=[2], strides=[2]),
        n("AveragePool", ["m"], ["a"], name="/avg/AveragePool", kernel_shape=[2], pads=[1, 0],
          count_include_pad=0, strides=[1]),
        n("GlobalMaxPool", ["a"], ["g"], name="/gmp/GlobalMaxPool"),
        n("Flatten", ["g"], ["f"], name="/Flatten"),
        n("Gemm", ["f", "fw", "fb"], ["y"], name="/fc/Gemm", transB=1),
    ], [f32("w", [4, 1, 3], -0.2), f32("b", [4]), f32("fw", [3, 4], 0.1), f32("fb", [3])],
        [fx(["N", 2, 12])], [fy(["N", 3])], 13)

    # 3-D convolution and pools (NCDHW).
    graph_model("conv3d_pools_opset13", [
        n("Conv", ["x", "w"], ["c"], name="/conv/Conv", kernel_shape=[2, 3, 3],
          pads=[0, 1, 1, 0, 1, 1], strides=[1, 2, 2]),
        n("BatchNormalization", ["c", "s", "b", "mean", "var"], ["bn"], name="/bn/BN"),
        n("Relu", ["bn"], ["r"], name="/Relu"),
        n("MaxPool", ["r"], ["m"], name="/pool/MaxPool", kernel_shape=[1, 2, 2],
          strides=[1, 2, 2], ceil_mode=1),
        n("AveragePool", ["m"], ["a"], name="/avg/AveragePool", kernel_shape=[2, 1, 1]),
        n("GlobalAveragePool", ["a"], ["g"], name="/gap/GlobalAveragePool"),
        n("Flatten", ["g"], ["y"], name="/Flatten"),
    ], [f32("w", [3, 1, 2, 3, 3], -0.1), f32("s", [3], 1.0), f32("b", [3]), f32("mean", [3]),
        f32("var", [3], 1.0)],
        [fx(["N", 1, 4, 6, 6])], [fy(["N", 3])], 13)

    # Decoder: ConvTranspose (stride 2, output_padding, groups, pads), Resize by scales
    # (nearest, asymmetric, floor) and by sizes (linear, align_corners), Pad (reflect), HardSigmoid,
    # HardSwish (opset 14).
    graph_model("convtranspose_resize_opset14", [
        n("ConvTranspose", ["x", "w", "b"], ["t"], name="/up/ConvTranspose", kernel_shape=[3, 3],
          strides=[2, 2], pads=[1, 1, 1, 1], output_padding=[1, 1], group=2),
        n("Resize", ["t", "", "scales"], ["r"], name="/Resize", mode="nearest",
          coordinate_transformation_mode="asymmetric", nearest_mode="floor"),
        n("Shape", ["r"], ["rs"], name="/Shape"),
        n("Slice", ["rs", "zero", "two"], ["nc"], name="/Slice"),
        n("Concat", ["nc", "hw"], ["sizes"], name="/Concat", axis=0),
        n("Resize", ["r", "", "", "sizes"], ["r2"], name="/Resize_1", mode="linear",
          coordinate_transformation_mode="align_corners"),
        n("Pad", ["r2", "pads"], ["p"], name="/Pad", mode="reflect"),
        n("HardSigmoid", ["p"], ["hs"], name="/HardSigmoid", alpha=0.2, beta=0.5),
        n("HardSwish", ["hs"], ["y"], name="/HardSwish"),
    ], [f32("w", [2, 2, 3, 3], -0.2), f32("b", [4]),
        numpy_helper.from_array(np.array([1, 1, 2, 2], dtype=np.float32), "scales"),
        i64("zero", [0]), i64("two", [2]), i64("hw", [10, 12]),
        i64("pads", [0, 0, 1, 1, 0, 0, 1, 1])],
        [fx(["N", 2, 3, 3])], [fy(["N", 4, 12, 14])], 14)

    # Opset 18 forms: Split with num_outputs, ReduceMean / ReduceMax with an axes input, Pad with
    # an axes input, Resize with axes.
    graph_model("relabelled_opset18", [
        n("Conv", ["x", "w"], ["c"], name="/conv/Conv", kernel_shape=[1, 1]),
        n("Pad", ["c", "pads", "pv", "paxes"], ["p"], name="/Pad", mode="edge"),
        n("Resize", ["p", "", "scales"], ["r"], name="/Resize", mode="nearest", axes=[2, 3]),
        n("Split", ["r"], ["s0", "s1"], name="/Split", axis=1, num_outputs=2),
        n("ReduceMean", ["s0", "raxes"], ["m0"], name="/ReduceMean", keepdims=0),
        n("ReduceMax", ["s1", "raxes"], ["m1"], name="/ReduceMax", keepdims=0),
        n("Concat", ["m0", "m1"], ["y"], name="/Concat", axis=1),
    ], [f32("w", [5, 2, 1, 1], -0.2), i64("pads", [1, 1, 1, 1]), f32("pv", [], 0.0),
        i64("paxes", [2, 3]), numpy_helper.from_array(np.array([2, 2], dtype=np.float32),
                                                       "scales"),
        i64("raxes", [2, 3])],
        [fx(["N", 2, 3, 3])], [fy(["N", 5])], 18)

    # Opset 19-21 forms: AveragePool with dilations (19), Cast with saturate (19), Gelu (20,
    # both approximations), Pad with a negative axis (21), ReduceSum with an axes input.
    for opset in (19, 21):
        graph_model(f"relabelled_opset{opset}", [
            n("AveragePool", ["x"], ["a"], name="/AveragePool", kernel_shape=[2, 2],
              dilations=[2, 2]),
            n("Cast", ["a"], ["c"], name="/Cast", to=TensorProto.FLOAT, saturate=1),
            n("Pad", ["c", "pads", "pv", "paxes"], ["p"], name="/Pad", mode="constant"),
            n("Flatten", ["p"], ["f"], name="/Flatten"),
            n("Gemm", ["f", "w"], ["h"], name="/fc/Gemm", transB=1),
        ] + ([
            n("Gelu", ["h"], ["g"], name="/Gelu"),
            n("Gelu", ["g"], ["g2"], name="/Gelu_1", approximate="tanh"),
        ] if opset >= 20 else [n("Tanh", ["h"], ["g2"], name="/Tanh")]) + [
            n("Unsqueeze", ["g2", "one"], ["u"], name="/Unsqueeze"),
            n("ReduceSum", ["u", "one"], ["y"], name="/ReduceSum", keepdims=0),
        ], [i64("pads", [1, 1]), f32("pv", [], 0.5), i64("paxes", [-1]),
            f32("w", [3, 12], -0.1), i64("one", [1])],
            [fx(["N", 2, 4, 3])], [fy(["N", 3])], opset)

    # QONNX (qonnx.custom_op.general): a Brevitas-style CNN with Quant on input, weights, bias
    # and after a ReLU in front of a MaxPool; a MatMul + Add linear with Quant on the Add's
    # constant and behind the Add; rounding modes ROUND, HALF_UP, FLOOR.
    qn, qi = [], []
    for node, inits in (quant("x", "xq", 2.0**-4, 8.0), quant("cw", "cwq", 2.0**-3, 4.0),
                        quant("cb", "cbq", 2.0**-5, 8.0, rounding="HALF_UP")):
        qn.append(node)
        qi += inits
    body = [
        n("Conv", ["xq", "cwq", "cbq"], ["c"], name="/conv/Conv", kernel_shape=[3, 3]),
        n("Relu", ["c"], ["r"], name="/Relu"),
    ]
    rq, ri = quant("r", "rq", 2.0**-3, 6.0, signed=0, rounding="FLOOR")
    mq, mi = quant("mw", "mwq", 2.0**-4, 6.0)
    bq, bi = quant("mb", "mbq", 2.0**-4, 8.0)
    oq, oi = quant("o", "y", 2.0**-2, 8.0)
    graph_model("qonnx_quant_cnn_opset13", qn + body + [
        rq,
        n("MaxPool", ["rq"], ["m"], name="/pool/MaxPool", kernel_shape=[2, 2], strides=[2, 2]),
        n("Flatten", ["m"], ["f"], name="/Flatten"),
        mq, bq,
        n("MatMul", ["f", "mwq"], ["mm"], name="/fc/MatMul"),
        n("Add", ["mm", "mbq"], ["o"], name="/fc/Add"),
        oq,
    ], qi + ri + mi + bi + oi + [f32("cw", [2, 1, 3, 3], -0.2), f32("cb", [2]),
                                 f32("mw", [8, 3], -0.1), f32("mb", [3])],
        [fx(["N", 1, 6, 6])], [fy(["N", 3])], 13, [(QONNX, 1)])

    # QONNX BipolarQuant on a weight; Trunc after an accumulator behind a Quant of the older
    # onnx.brevitas domain (both refused by the importer, naming the node).
    graph_model("qonnx_bipolar_opset13", [
        n("BipolarQuant", ["w", "bs"], ["wq"], domain=QONNX, name="BipolarQuant_w"),
        n("Gemm", ["x", "wq"], ["y"], name="/fc/Gemm", transB=1),
    ], [f32("w", [3, 4], -0.1), f32("bs", [], 0.5)],
        [fx(["N", 4])], [fy(["N", 3])], 13, [(QONNX, 1)])
    graph_model("qonnx_trunc_opset13", [
        n("Quant", ["x", "xs", "xz", "xb"], ["xq"], domain="onnx.brevitas", name="Quant_x",
          signed=1, narrow=0, rounding_mode="ROUND"),
        n("Gemm", ["xq", "w"], ["g"], name="/fc/Gemm", transB=1),
        n("Trunc", ["g", "ts", "tz", "tb", "tos", "toz", "tob"], ["y"], domain=QONNX,
          name="Trunc_acc", rounding_mode="FLOOR"),
    ], [f32("xs", [], 2.0**-4), f32("xz", []), f32("xb", [], 8.0), f32("w", [3, 4], -0.1),
        f32("ts", [], 2.0**-3), f32("tz", []), f32("tb", [], 8.0), f32("tos", [], 2.0**-1),
        f32("toz", []), f32("tob", [], 4.0)],
        [fx(["N", 4])], [fy(["N", 3])], 13, [(QONNX, 1), ("onnx.brevitas", 1)])


def main():
    os.makedirs(OUT, exist_ok=True)
    # Conv with auto_pad SAME_UPPER, groups and strides; AveragePool SAME_LOWER; LeakyRelu; Clip
    # with constant inputs; Softmax at opset 11 along the last axis.
    model("conv_same_softmax_opset11", [
        helper.make_node("Conv", ["x", "w", "b"], ["c"], name="/conv/Conv", auto_pad="SAME_UPPER",
                         strides=[2, 2], group=2, kernel_shape=[3, 3]),
        helper.make_node("LeakyRelu", ["c"], ["l"], name="/act/LeakyRelu", alpha=0.2),
        helper.make_node("AveragePool", ["l"], ["p"], name="/pool/AveragePool",
                         auto_pad="SAME_LOWER", kernel_shape=[2, 2], count_include_pad=1),
        helper.make_node("Clip", ["p", "lo", "hi"], ["k"], name="/Clip"),
        helper.make_node("GlobalAveragePool", ["k"], ["g"], name="/gap/GlobalAveragePool"),
        helper.make_node("Flatten", ["g"], ["f"], name="/Flatten"),
        helper.make_node("Softmax", ["f"], ["y"], name="/Softmax", axis=1),
    ], [f32("w", [4, 1, 3, 3], -0.1), f32("b", [4]), f32("lo", [], -1.0), f32("hi", [], 6.0)],
        ["N", 2, 7, 7], ["N", 4], 11)

    # Every shape-computation op: Shape(start) -> Slice -> Cast -> Squeeze/Unsqueeze ->
    # Concat -> Mul/Div -> Reshape, ConstantOfShape, Gather with a negative index.
    model("shape_ops_opset15", [
        helper.make_node("Shape", ["x"], ["s"], name="/Shape", start=0),
        helper.make_node("Slice", ["s", "zero", "one"], ["batch"], name="/Slice"),
        helper.make_node("Cast", ["batch"], ["batch32"], name="/Cast", to=TensorProto.INT32),
        helper.make_node("Cast", ["batch32"], ["batch64"], name="/Cast_1", to=TensorProto.INT64),
        helper.make_node("Squeeze", ["batch64", "zero"], ["b0"], name="/Squeeze"),
        helper.make_node("Unsqueeze", ["b0", "zero"], ["b1"], name="/Unsqueeze"),
        helper.make_node("Gather", ["s", "minus1"], ["w"], name="/Gather", axis=0),
        helper.make_node("Gather", ["s", "two"], ["h"], name="/Gather_1", axis=0),
        helper.make_node("Mul", ["w", "h"], ["hw"], name="/Mul"),
        helper.make_node("Div", ["hw", "two"], ["half"], name="/Div"),
        helper.make_node("Unsqueeze", ["half", "zero"], ["half_1d"], name="/Unsqueeze_1"),
        helper.make_node("Slice", ["s", "one", "two_1d"], ["chan"], name="/Slice_1"),
        helper.make_node("Concat", ["b1", "chan", "half_1d", "two_1d"], ["target"],
                         name="/Concat", axis=0),
        helper.make_node("ConstantOfShape", ["two_1d"], ["ones"], name="/ConstantOfShape",
                         value=helper.make_tensor("v", TensorProto.FLOAT, [1], [1.0])),
        helper.make_node("Reshape", ["x", "target"], ["r"], name="/Reshape"),
        helper.make_node("Unsqueeze", ["ones", "zero"], ["ones_b"], name="/Unsqueeze_2"),
        helper.make_node("Add", ["r", "ones_b"], ["y"], name="/Add"),
    ], [i64("zero", [0]), i64("one", [1]), i64("minus1", -1), i64("two", 2), i64("two_1d", [2])],
        ["N", 3, 2, 4], ["N", 3, 4, 2], 15)

    # Gemm without bias, MatMul against a constant and an activation, Sub/Mul/Div by constants,
    # Transpose, Concat of activations, Dropout with a ratio input, Identity, Sigmoid, Tanh.
    model("dense_ops_opset13", [
        helper.make_node("Gemm", ["x", "w"], ["a"], name="/fc/Gemm", alpha=0.5, transB=1),
        helper.make_node("MatMul", ["a", "m"], ["b"], name="/proj/MatMul"),
        helper.make_node("Sub", ["b", "c"], ["d"], name="/Sub"),
        helper.make_node("Mul", ["d", "c"], ["e"], name="/Mul"),
        helper.make_node("Div", ["e", "c"], ["f"], name="/Div"),
        helper.make_node("Sigmoid", ["f"], ["g"], name="/Sigmoid"),
        helper.make_node("Tanh", ["g"], ["h"], name="/Tanh"),
        helper.make_node("Concat", ["h", "g"], ["i"], name="/Concat", axis=1),
        helper.make_node("Dropout", ["i", "ratio"], ["j"], name="/drop/Dropout"),
        helper.make_node("Identity", ["j"], ["k"], name="/Identity"),
        helper.make_node("Transpose", ["k"], ["t"], name="/Transpose", perm=[1, 0]),
        helper.make_node("Transpose", ["t"], ["u"], name="/Transpose_1"),
        helper.make_node("Transpose", ["u"], ["ut"], name="/Transpose_2"),
        helper.make_node("MatMul", ["u", "ut"], ["y"], name="/MatMul"),
    ], [f32("w", [6, 4], 0.1), f32("m", [6, 3], -0.2), f32("c", [3], 1.0), f32("ratio", [], 0.3)],
        ["N", 4], ["N", "N"], 13)

    # BatchNormalization (opset 15), MaxPool with ceil_mode, dilations and pads, ReLU, a folded
    # constant subgraph (Transpose + Mul of initializers feeding the Conv weight).
    model("bn_pool_opset17", [
        helper.make_node("Transpose", ["wt"], ["w0"], name="/fold/Transpose", perm=[1, 0, 2, 3]),
        helper.make_node("Mul", ["w0", "two"], ["w"], name="/fold/Mul"),
        helper.make_node("Conv", ["x", "w"], ["c"], name="/conv/Conv", pads=[1, 1, 1, 1],
                         dilations=[2, 2]),
        helper.make_node("BatchNormalization", ["c", "s", "b", "mean", "var"], ["n"],
                         name="/bn/BatchNormalization", epsilon=1e-3),
        helper.make_node("Relu", ["n"], ["r"], name="/Relu"),
        helper.make_node("MaxPool", ["r"], ["y"], name="/pool/MaxPool", kernel_shape=[3, 3],
                         strides=[2, 2], pads=[1, 1, 1, 1], ceil_mode=1, dilations=[1, 1]),
    ], [f32("wt", [1, 3, 3, 3], -0.3), f32("two", [], 2.0), f32("s", [3], 1.0), f32("b", [3]),
        f32("mean", [3]), f32("var", [3], 1.0)],
        ["N", 1, 9, 9], ["N", 3, 4, 4], 17)


    new_seeds()


if __name__ == "__main__":
    main()
