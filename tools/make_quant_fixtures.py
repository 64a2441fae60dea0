#!/usr/bin/env python3
"""Writes tests/fixtures/quant/{round_ties,fake_quant}.txt from real PyTorch.

Run with Debian's interpreter (it has python3-torch):
    /usr/bin/python3 tools/make_quant_fixtures.py

fake_quant.txt pins qsearch's fake_quantize() to MASE's _integer_quantize
(chop/nn/quantizers/integer.py; reference mase.md section 6.1) as PyTorch computes it in float32:
    clamp(round(x * 2**frac), int_min, int_max) / 2**frac
(integer_floor_quantizer: floor instead of round). Values are float32 bit patterns in hex.
"""
import os
import struct

import numpy as np
import torch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "tests", "fixtures", "quant")
N_INPUTS = 2048
SEED = 20240611

# (width, frac, is_signed, rounding): widths 1..32, frac < 0, frac > width, unsigned (ReLU input),
# float32 bounds that differ from the integer bounds (w >= 26), and the floor quantizer.
FORMATS = [
    (1, 0, False, "half_to_even"),
    (2, 1, True, "half_to_even"),
    (4, 2, True, "half_to_even"),
    (8, 4, True, "half_to_even"),
    (8, 4, False, "half_to_even"),
    (8, 12, True, "half_to_even"),
    (8, -3, True, "half_to_even"),
    (16, 8, True, "half_to_even"),
    (26, 0, True, "half_to_even"),
    (32, 16, True, "half_to_even"),
    (32, 0, False, "half_to_even"),
    (8, 4, True, "floor"),
    (5, 1, False, "floor"),
]


def mase_integer_quantize(x, width, frac_width, is_signed=True, floor=False):
    """MASE's _integer_quantize / integer_floor_quantizer forward pass, verbatim math."""
    if is_signed:
        int_min, int_max = -(2 ** (width - 1)), 2 ** (width - 1) - 1
    else:
        int_min, int_max = 0, 2**width - 1
    scale = 2**frac_width
    r = torch.floor(x * scale) if floor else torch.round(x * scale)
    return torch.clamp(r, int_min, int_max) / scale


def f32(v):
    return float(np.float32(v))


def make_inputs():
    rng = np.random.default_rng(SEED)
    fmax = np.finfo(np.float32).max
    tiny = np.finfo(np.float32).tiny  # smallest normal
    sub = float(np.float32(1e-45))  # smallest subnormal
    vals = [0.0, -0.0, float("inf"), float("-inf"), float("nan"), fmax, -fmax, tiny, -tiny,
            sub, -sub, 1e-40, -1e-40, 3e-39, 1e30, -1e30, 1e10, -1e10, 2.0**31, -(2.0**31),
            2.0**32, 2.0**31 - 128, 2.0**24 + 2, -(2.0**24) - 2]
    # Exact ties of x * 2^f for every frac used (and a few more).
    fracs = sorted({f for _, f, _, _ in FORMATS} | {1, 2, 3, 6})
    for f in fracs:
        for k in range(-24, 24):
            vals.append(f32((k + 0.5) * 2.0 ** (-f)))
        for k in (2**22 + 1, -(2**22) - 1, 2**10 + 7):
            vals.append(f32((k + 0.5) * 2.0 ** (-f)))
    # Around both ends of every format's range.
    for w, f, s, _ in FORMATS:
        lo, hi = (-(2 ** (w - 1)), 2 ** (w - 1) - 1) if s else (0, 2**w - 1)
        for end in (lo, hi):
            for d in (-1.0, -0.5, -0.25, 0.0, 0.25, 0.5, 1.0, 3.0):
                vals.append(f32((end + d) * 2.0 ** (-f)))
    # Log-uniform magnitudes 2^-40 .. 2^40 with random signs, then plain normals.
    n_log = (N_INPUTS - len(vals)) // 2
    mags = np.exp2(rng.uniform(-40, 40, n_log))
    signs = rng.choice([-1.0, 1.0], n_log)
    vals.extend((mags * signs).astype(np.float32).tolist())
    vals.extend(rng.standard_normal(N_INPUTS - len(vals)).astype(np.float32).tolist())
    assert len(vals) == N_INPUTS
    return np.array(vals, dtype=np.float32)


def hex_lines(arr):
    words = arr.astype(np.float32).view(np.uint32)
    return [" ".join(f"{w:08x}" for w in words[i:i + 16]) for i in range(0, len(words), 16)]


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)

    ties = np.array([k + 0.5 for k in range(-8, 8)] + [2.0**22 + 0.5, -(2.0**22) - 0.5,
                    0.49999997, -0.49999997, 1e-45, -1e-45], dtype=np.float32)
    rounded = torch.round(torch.from_numpy(ties)).numpy()
    with open(os.path.join(OUT, "round_ties.txt"), "w") as f:
        f.write(f"# torch.round (torch {torch.__version__}) on float32: input_bits output_bits\n")
        f.write("# made by tools/make_quant_fixtures.py\n")
        for x, y in zip(ties.view(np.uint32), rounded.view(np.uint32)):
            f.write(f"{x:08x} {y:08x}\n")

    x = make_inputs()
    xt = torch.from_numpy(x)
    with open(os.path.join(OUT, "fake_quant.txt"), "w") as f:
        f.write(f"# MASE _integer_quantize computed by torch {torch.__version__} in float32\n")
        f.write("# made by tools/make_quant_fixtures.py; values are float32 bits in hex\n")
        f.write(f"inputs {len(x)}\n")
        f.write("\n".join(hex_lines(x)) + "\n")
        for w, fr, s, rounding in FORMATS:
            y = mase_integer_quantize(xt, w, fr, s, floor=(rounding == "floor")).numpy()
            f.write(f"format {w} {fr} {1 if s else 0} {rounding}\n")
            f.write("\n".join(hex_lines(y)) + "\n")
    print(f"wrote {len(x)} inputs x {len(FORMATS)} formats to {OUT}")


if __name__ == "__main__":
    main()
