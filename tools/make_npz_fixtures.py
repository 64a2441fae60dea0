#!/usr/bin/env python3
"""Writes the NumPy fixtures of the .npy/.npz reader and the npz:/npy: data sets.

Run from the repository root with the reference stack: /usr/bin/python3 tools/make_npz_fixtures.py
Output: tests/fixtures/data/npz/ (small files, committed). Every value is deterministic.

  a_<type>_<le|be>.npy    np.arange(24).reshape(2, 3, 4) (minus 12 for signed types; % 3 == 0
                          for bool) in each supported dtype, little- and big-endian
  a_f4_fortran.npy        the float32 array in Fortran order
  a_f4_v2.npy, a_f4_v3.npy  the float32 array in .npy format versions 2.0 and 3.0
  arrays.npz              np.savez: a (float32, as above), b (int64 [5]), c (bool [2, 2])
  arrays_compressed.npz   np.savez_compressed of the same
  mnist12.npz             the 12 test and 20 train images of tests/fixtures/data/idx/mnist as
                          x_test/y_test, x_train/y_train (float32 [N, 1, 28, 28], pixels / 255,
                          int64 labels): what `--dataset mnist` loads from that directory
  mnist12_flat.npz        the test images only, named inputs/labels, x as float64 [12, 784]
  mnist12_x.npy, mnist12_y.npy  the test images (uint8 [12, 28, 28], raw pixels) and labels (int32)
  regress.npz             x = the 12 test images (float32 [12, 784]), y = float32 [12, 10]
                          targets: 2 * one-hot of the label - 1
  zip64.npz               the float32 array as member a.npy, stored, written by hand with every
                          size and offset in zip64 records (central directory fields 0xffffffff,
                          a zip64 end record and locator), as a zip of more than 4 GiB has them
  bad_shape.npz           x float32 [12, 3, 5] (no model of ours takes it), y int64 [12]
  bert_ids.npz            the BERT-style fixture's 1000 evaluation sequences
                          (tests/fixtures/transformer/bert_ref.json): x int64 token ids
                          [1000, 12], y int64 labels; what a user's tokenized data set looks like
"""
import os
import struct

import numpy as np

OUT = "tests/fixtures/data/npz"
IDX = "tests/fixtures/data/idx/mnist"


def read_idx(path):
    with open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data[4 + 4 * ndim:], dtype=np.uint8).reshape(dims)


def write_zip64(path, name, payload):
    """One stored member; every size/offset in zip64 extra fields and a zip64 end record."""
    import zlib
    crc = zlib.crc32(payload)
    fname = name.encode()
    extra_local = struct.pack("<HHQQ", 1, 16, len(payload), len(payload))
    local = struct.pack("<IHHHHHIIIHH", 0x04034B50, 45, 0, 0, 0, 0, crc, 0xFFFFFFFF,
                        0xFFFFFFFF, len(fname), len(extra_local)) + fname + extra_local
    extra_central = struct.pack("<HHQQQ", 1, 24, len(payload), len(payload), 0)
    central = struct.pack("<IHHHHHHIIIHHHHHII", 0x02014B50, 45, 45, 0, 0, 0, 0, crc,
                          0xFFFFFFFF, 0xFFFFFFFF, len(fname), len(extra_central), 0, 0, 0, 0,
                          0xFFFFFFFF) + fname + extra_central
    dir_offset = len(local) + len(payload)
    z64_offset = dir_offset + len(central)
    end64 = struct.pack("<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, 1, 1, len(central),
                        dir_offset)
    locator = struct.pack("<IIQI", 0x07064B50, 0, z64_offset, 1)
    end = struct.pack("<IHHHHIIH", 0x06054B50, 0, 0, 0xFFFF, 0xFFFF, 0xFFFFFFFF, 0xFFFFFFFF, 0)
    with open(path, "wb") as f:
        f.write(local + payload + central + end64 + locator + end)


def main():
    os.makedirs(OUT, exist_ok=True)
    base = np.arange(24).reshape(2, 3, 4)
    types = {"f4": np.float32, "f8": np.float64, "i1": np.int8, "u1": np.uint8,
             "i2": np.int16, "i4": np.int32, "i8": np.int64, "u2": np.uint16,
             "u4": np.uint32, "b1": np.bool_}
    for name, t in types.items():
        if t is np.bool_:
            a = (base % 3 == 0)
        elif np.issubdtype(t, np.signedinteger) or np.issubdtype(t, np.floating):
            a = (base - 12).astype(t)
        else:
            a = base.astype(t)
        for order in ("le", "be"):
            dt = a.dtype.newbyteorder("<" if order == "le" else ">")
            np.save(f"{OUT}/a_{name}_{order}.npy", a.astype(dt))
    f4 = (base - 12).astype(np.float32)
    np.save(f"{OUT}/a_f4_fortran.npy", np.asfortranarray(f4))
    for v in (2, 3):
        with open(f"{OUT}/a_f4_v{v}.npy", "wb") as f:
            np.lib.format.write_array(f, f4, version=(v, 0))
    import io
    buf = io.BytesIO()
    np.save(buf, f4)
    write_zip64(f"{OUT}/zip64.npz", "a.npy", buf.getvalue())
    arrays = {"a": f4, "b": np.arange(5, dtype=np.int64) * 7,
              "c": np.array([[True, False], [False, True]])}
    np.savez(f"{OUT}/arrays.npz", **arrays)
    np.savez_compressed(f"{OUT}/arrays_compressed.npz", **arrays)

    xt = read_idx(f"{IDX}/t10k-images-idx3-ubyte")
    yt = read_idx(f"{IDX}/t10k-labels-idx1-ubyte")
    xr = read_idx(f"{IDX}/train-images-idx3-ubyte")
    yr = read_idx(f"{IDX}/train-labels-idx1-ubyte")
    scale = lambda x: (x.astype(np.float32) / np.float32(255)).reshape(len(x), 1, 28, 28)
    np.savez_compressed(f"{OUT}/mnist12.npz", x_test=scale(xt), y_test=yt.astype(np.int64),
                        x_train=scale(xr), y_train=yr.astype(np.int64))
    np.savez(f"{OUT}/mnist12_flat.npz",
             inputs=scale(xt).reshape(len(xt), 784).astype(np.float64),
             labels=yt.astype(np.int64))
    np.save(f"{OUT}/mnist12_x.npy", xt)
    np.save(f"{OUT}/mnist12_y.npy", yt.astype(np.int32))
    targets = 2 * np.eye(10, dtype=np.float32)[yt] - 1
    np.savez(f"{OUT}/regress.npz", x=scale(xt).reshape(len(xt), 784), y=targets)
    np.savez(f"{OUT}/bad_shape.npz", x=np.zeros((12, 3, 5), np.float32), y=yt.astype(np.int64))
    import json
    with open("tests/fixtures/transformer/bert_ref.json") as f:
        bert = json.load(f)
    np.savez_compressed(f"{OUT}/bert_ids.npz", x=np.array(bert["ids"], np.int64),
                        y=np.array(bert["labels"], np.int64))


if __name__ == "__main__":
    main()
