#!/usr/bin/python3
"""Checks ONNX files written by `qsearch train` with the official checker (python3-onnx) and
prints their input/output shapes, so a dynamic batch dimension is visible.

  /usr/bin/python3 bench/train_check_onnx.py models/*.onnx
"""
import sys

import onnx


def dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def main(paths):
    if not paths:
        sys.exit(__doc__)
    for path in paths:
        model = onnx.load(path)
        onnx.checker.check_model(model, full_check=True)
        g = model.graph
        print(f"{path}: ok (opset {model.opset_import[0].version}, {len(g.node)} nodes, "
              f"input {dims(g.input[0])}, output {dims(g.output[0])})")


if __name__ == "__main__":
    main(sys.argv[1:])
