#!/usr/bin/python3
"""Writes small valid ONNX models that together use every operator and attribute form the
importer supports: the seed corpus of tests/fuzz/onnx_import_fuzzer.cc (beside the PyTorch
fixtures) and inputs of tests/onnx/import_ops_test.cc.

Regenerate (from the repository root):

    /usr/bin/python3 tools/onnx_fuzz_seeds.py

Output: tests/fixtures/onnx_fuzz_seeds/*.onnx (a few KB; deterministic, no randomness).
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


if __name__ == "__main__":
    main()
