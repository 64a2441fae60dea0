#!/usr/bin/python3
"""A small PyTorch CNN whose ONNX export contains Pad nodes, for the importer's Pad folding.

Regenerate with (from the repository root):

    /usr/bin/python3 tools/make_pad_fixtures.py

Outputs (tests/fixtures/torch/):
  pad_pool_opset13.onnx  x [N, 1, 12, 12] -> F.pad(x, (1, 2, 1, 0)) (an explicit zero Pad of H/W)
                         -> Conv2d(1, 4, 3) -> relu -> F.avg_pool2d(., 2) (PyTorch's default export
                         of avg_pool2d: an all-zero Pad, then AveragePool) -> F.pad(., (1, 1, 0, 1))
                         -> F.avg_pool2d(., 2) -> flatten -> Linear(48, 10). Random weights (seed 0),
                         exported with a dynamic batch axis, opset 13.
  pad_pool_ref.json      the Pad nodes PyTorch wrote (their pads) and the float32 logits of 8
                         seeded uniform [0, 1) inputs (also stored there), computed by PyTorch.
Deterministic; runs in a second.
"""

import argparse
import json
import os

import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F
from onnx import numpy_helper


class PadPool(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, 3)
        self.fc = nn.Linear(4 * 3 * 4, 10)

    def forward(self, x):
        x = F.pad(x, (1, 2, 1, 0))  # (left, right, top, bottom): 12x12 -> 13x15
        x = F.relu(self.conv(x))    # -> 11x13
        x = F.avg_pool2d(x, 2)      # -> 5x6
        x = F.pad(x, (1, 1, 0, 1))  # -> 6x8
        x = F.avg_pool2d(x, 2)      # -> 3x4
        return self.fc(torch.flatten(x, 1))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="tests/fixtures/torch")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = PadPool().eval()
    x = torch.rand(8, 1, 12, 12)
    path = os.path.join(args.out, "pad_pool_opset13.onnx")
    torch.onnx.export(model, x[:1], path, opset_version=13, input_names=["input"],
                      output_names=["logits"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}})
    m = onnx.load(path)
    inits = {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}
    consts = {}
    for n in m.graph.node:
        if n.op_type == "Constant":
            consts[n.output[0]] = numpy_helper.to_array(n.attribute[0].t)
    pads = []
    for n in m.graph.node:
        if n.op_type == "Pad":
            p = inits.get(n.input[1], consts.get(n.input[1]))
            pads.append([int(v) for v in p.reshape(-1)] if p is not None else None)
    with torch.no_grad():
        y = model(x)
    ref = {"model": "pad_pool_opset13.onnx", "torch": torch.__version__,
           "ops": [n.op_type for n in m.graph.node], "pads": pads,
           "input": x.reshape(-1).tolist(), "input_shape": list(x.shape),
           "logits": y.tolist()}
    with open(os.path.join(args.out, "pad_pool_ref.json"), "w") as f:
        json.dump(ref, f)
        f.write("\n")
    print(path, ref["ops"], pads)


if __name__ == "__main__":
    main()
