#!/usr/bin/env python3
"""PyTorch's gradients of one training step of tests/fixtures/nd/convt3d_net (make_nd_fixtures.py:
a plain and a grouped, dilated nn.ConvTranspose3d with output_padding, ReLU, global average pool,
Linear), read by tests/train/convtranspose_torch_test.cc.

The weights are the fixture ONNX file's initializers, the batch its nd_ref.json input with labels
0, 1, 2; loss = mean cross entropy of the logits. Output tests/fixtures/nd/convt3d_grad.json:
  loss, logits, input_grad (flat), grads {name: flat gradient} under the names qsearch's trainer
  gives its parameters: a 3-D ConvTranspose weight [C, M/g, kD, kH, kW] is imported as
  `<name>~2d` [C*kD*kH, M/g, 1, kW] (import_conv_transpose_nd.cc), its gradient rearranged alike.

Usage: /usr/bin/python3 tools/make_convt3d_grad_fixture.py [--dir tests/fixtures/nd]
"""
import argparse
import json
import os

import onnx
import onnx.numpy_helper
import torch
import torch.nn.functional as F


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", default="tests/fixtures/nd")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model = onnx.load(os.path.join(args.dir, "convt3d_net_opset13.onnx"))
    w = {i.name: torch.tensor(onnx.numpy_helper.to_array(i).copy(), dtype=torch.float64,
                              requires_grad=True) for i in model.graph.initializer}
    with open(os.path.join(args.dir, "nd_ref.json")) as fh:
        ref = json.load(fh)["models"]["convt3d_net"]
    x = torch.tensor(ref["input"], dtype=torch.float64).reshape(ref["input_shape"])
    x.requires_grad_(True)
    labels = torch.arange(x.shape[0]).remainder(3)

    h = F.conv_transpose3d(x, w["t1.weight"], w["t1.bias"], stride=(2, 1, 2), padding=(1, 0, 1),
                           output_padding=(1, 0, 1))
    h = F.conv_transpose3d(F.relu(h), w["t2.weight"], None, stride=(1, 2, 1), padding=(1, 1, 0),
                           output_padding=(1, 1, 0), groups=2, dilation=(2, 1, 1))
    logits = F.linear(h.mean(dim=(2, 3, 4)), w["fc.weight"], w["fc.bias"])
    assert torch.allclose(logits.reshape(-1).float(), torch.tensor(ref["float"]), atol=1e-5)
    loss = F.cross_entropy(logits, labels)
    loss.backward()

    def flat(t):
        return [float(v) for v in t.detach().reshape(-1).tolist()]

    grads = {}
    for name, t in w.items():
        g = t.grad
        if g.dim() == 5:  # [C, M/g, kD, kH, kW] -> [C, kD, kH, M/g, kW] = [C*kD*kH, M/g, 1, kW]
            g = g.permute(0, 2, 3, 1, 4)
            name += "~2d"
        grads[name] = flat(g)
    out = {"loss": float(loss), "labels": labels.tolist(), "logits": flat(logits),
           "input_grad": flat(x.grad), "grads": grads}
    with open(os.path.join(args.dir, "convt3d_grad.json"), "w") as fh:
        json.dump(out, fh, indent=None, separators=(",", ":"))
        fh.write("\n")


if __name__ == "__main__":
    main()
