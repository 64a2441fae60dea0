#!/usr/bin/python3
"""A small PyTorch MLP ending in F.log_softmax, for the LogSoftmax op and its loss.

Regenerate with (from the repository root):

    /usr/bin/python3 tools/make_logsoftmax_fixtures.py

Outputs (tests/fixtures/torch/):
  log_softmax_mlp_opset13.onnx  x [N, 6] -> Linear(6, 8) -> relu -> Linear(8, 4) ->
                                F.log_softmax(., dim=1). Random weights (seed 0), exported with a
                                dynamic batch axis, opset 13 (LogSoftmax along one axis).
  log_softmax_mlp_opset11.onnx  the same model at opset 11 (LogSoftmax flattening to 2-D at axis 1,
                                which is the same thing for a [N, 4] input).
  log_softmax_ref.json          8 seeded inputs (uniform [-1, 1); the last row scaled by 3000 so
                                that its probabilities underflow in float32 and only a stable
                                log-softmax stays finite), their labels, and, computed by PyTorch
                                in float32: the logits before the log_softmax, the log-probabilities
                                and the mean loss F.nll_loss(log_probs, labels) (which equals
                                F.cross_entropy(logits, labels)).
Deterministic; runs in a second.
"""

import argparse
import json
import os

import onnx
import torch
import torch.nn as nn
import torch.nn.functional as F


class LogSoftmaxMlp(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(6, 8)
        self.fc2 = nn.Linear(8, 4)

    def logits(self, x):
        return self.fc2(F.relu(self.fc1(x)))

    def forward(self, x):
        return F.log_softmax(self.logits(x), dim=1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", default="tests/fixtures/torch")
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(1)
    model = LogSoftmaxMlp().eval()
    x = torch.rand(8, 6) * 2 - 1
    x[7] *= 3000
    labels = torch.randint(0, 4, (8,))
    ops = {}
    for opset in (13, 11):
        name = "log_softmax_mlp_opset{}.onnx".format(opset)
        path = os.path.join(args.out, name)
        torch.onnx.export(model, x[:1], path, opset_version=opset, input_names=["input"],
                          output_names=["log_probs"],
                          dynamic_axes={"input": {0: "batch"}, "log_probs": {0: "batch"}})
        ops[name] = [n.op_type for n in onnx.load(path).graph.node]
    with torch.no_grad():
        z = model.logits(x)
        y = model(x)
        loss = F.nll_loss(y, labels).item()
        assert abs(loss - F.cross_entropy(z, labels).item()) <= 1e-5 * max(1.0, abs(loss))
    ref = {"models": sorted(ops), "torch": torch.__version__, "ops": ops,
           "input": x.reshape(-1).tolist(), "input_shape": list(x.shape),
           "labels": labels.tolist(), "logits": z.tolist(), "log_probs": y.tolist(),
           "loss": loss}
    with open(os.path.join(args.out, "log_softmax_ref.json"), "w") as f:
        json.dump(ref, f)
        f.write("\n")
    print(ops, loss)


if __name__ == "__main__":
    main()
