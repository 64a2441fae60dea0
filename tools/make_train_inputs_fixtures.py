#!/usr/bin/env python3
"""Writes tests/fixtures/train_inputs/: small ONNX models that `qsearch train` fits from npz data.

- two_inputs.onnx: graph inputs `a` float [batch, 4] and `b` float [batch, 3];
  Relu(Gemm(a, Wa) + Gemm(b, Wb)) -> Gemm -> [batch, 3] logits.
  two_inputs.npz: arrays a, b and y (int64); the label is argmax(b) (`a` is noise), so a model
  that does not see `b` stays near chance.
- seq_mean.onnx: graph input `x` float [batch, seq, 4] with `seq` symbolic (dynamic_axes
  {0: 'batch', 1: 'seq'}); MatMul(x, W[4, 8]) + bias -> Relu -> ReduceMean over seq -> Gemm ->
  [batch, 3] logits. seq_mean6.npz / seq_mean10.npz: x at seq 6 / 10 and y = argmax of the mean
  over the sequence of x[:, :, :3].

- squeeze_opset11.onnx / squeeze_opset13.onnx: x float [batch, 4] -> Unsqueeze(axis 1) ->
  Squeeze(axis 1) -> Gemm -> [batch, 4] logits, with the axes as an attribute (opset 11) and as
  an input (opset 13): the importer lowers both to Reshapes with allowzero = 1, which the
  exporter must write validly at every opset (tests/e2e/squeeze_export_e2e_test.cc).

Weights are small random numbers (seed 0); only numpy and onnx are needed:
    /usr/bin/python3 tools/make_train_inputs_fixtures.py
"""
import os

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures",
                   "train_inputs")
rng = np.random.RandomState(0)


def init(name, shape, scale=0.3):
    return numpy_helper.from_array((rng.randn(*shape) * scale).astype(np.float32), name)


def save(graph, name, opset=13):
    m = helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)],
                          producer_name="tools/make_train_inputs_fixtures.py")
    m.ir_version = 7
    onnx.checker.check_model(m, full_check=True)
    onnx.save(m, os.path.join(OUT, name))


def two_inputs():
    nodes = [
        helper.make_node("Gemm", ["a", "fc_a.weight", "fc_a.bias"], ["ha"], name="/fc_a/Gemm",
                         transB=1),
        helper.make_node("Gemm", ["b", "fc_b.weight"], ["hb"], name="/fc_b/Gemm", transB=1),
        helper.make_node("Add", ["ha", "hb"], ["h"], name="/Add"),
        helper.make_node("Relu", ["h"], ["r"], name="/Relu"),
        helper.make_node("Gemm", ["r", "fc.weight", "fc.bias"], ["output"], name="/fc/Gemm",
                         transB=1),
    ]
    inits = [init("fc_a.weight", (8, 4)), init("fc_a.bias", (8,)), init("fc_b.weight", (8, 3)),
             init("fc.weight", (3, 8)), init("fc.bias", (3,))]
    g = helper.make_graph(
        nodes, "two_inputs",
        [helper.make_tensor_value_info("a", TensorProto.FLOAT, ["batch", 4]),
         helper.make_tensor_value_info("b", TensorProto.FLOAT, ["batch", 3])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3])], inits)
    save(g, "two_inputs.onnx")
    n = 600
    a = rng.randn(n, 4).astype(np.float32)
    b = rng.randn(n, 3).astype(np.float32)
    y = np.argmax(b, axis=1).astype(np.int64)
    np.savez(os.path.join(OUT, "two_inputs.npz"), a=a, b=b, y=y)


def seq_mean():
    nodes = [
        helper.make_node("MatMul", ["x", "proj.weight"], ["p"], name="/proj/MatMul"),
        helper.make_node("Add", ["proj.bias", "p"], ["pb"], name="/proj/Add"),
        helper.make_node("Relu", ["pb"], ["r"], name="/Relu"),
        helper.make_node("ReduceMean", ["r"], ["m"], name="/ReduceMean", axes=[1], keepdims=0),
        helper.make_node("Gemm", ["m", "fc.weight", "fc.bias"], ["output"], name="/fc/Gemm",
                         transB=1),
    ]
    inits = [init("proj.weight", (4, 8)), init("proj.bias", (8,)), init("fc.weight", (3, 8)),
             init("fc.bias", (3,))]
    g = helper.make_graph(
        nodes, "seq_mean",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", "seq", 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 3])], inits)
    save(g, "seq_mean.onnx")
    for seq in (6, 10):
        n = 600
        x = rng.randn(n, seq, 4).astype(np.float32)
        y = np.argmax(x[:, :, :3].mean(axis=1), axis=1).astype(np.int64)
        np.savez(os.path.join(OUT, "seq_mean%d.npz" % seq), x=x, y=y)


def squeeze(opset):
    axes_input = opset >= 13
    ax = {} if axes_input else {"axes": [1]}
    extra = ["axes"] if axes_input else []
    nodes = [
        helper.make_node("Unsqueeze", ["x"] + extra, ["u"], name="/Unsqueeze", **ax),
        helper.make_node("Squeeze", ["u"] + extra, ["s"], name="/Squeeze", **ax),
        helper.make_node("Gemm", ["s", "fc.weight", "fc.bias"], ["output"], name="/fc/Gemm",
                         transB=1),
    ]
    inits = [init("fc.weight", (4, 4)), init("fc.bias", (4,))]
    if axes_input:
        inits.append(numpy_helper.from_array(np.array([1], np.int64), "axes"))
    g = helper.make_graph(
        nodes, "squeeze",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 4])], inits)
    save(g, "squeeze_opset%d.onnx" % opset, opset)


if __name__ == "__main__":
    os.makedirs(OUT, exist_ok=True)
    two_inputs()
    seq_mean()
    squeeze(11)
    squeeze(13)
