#!/usr/bin/python3
"""Writes the small data-set fixtures of tests/data and the arrays the real Python stack
computes from them (what qsearch's loaders must reproduce).

    /usr/bin/python3 tools/make_data_fixtures.py [OUT_DIR]    # default tests/fixtures/data

Needs numpy, pandas, h5py and scikit-learn (Debian: python3-numpy python3-pandas python3-h5py
python3-sklearn). Deterministic: the same versions write the same bytes.

Layout (every .f32 / .i64 file is raw little-endian float32 / int64, row-major):
  idx/mnist/{train,t10k}-{images-idx3,labels-idx1}-ubyte        plain IDX, 20 / 12 images
  idx/fashion-mnist/....gz                                      the same format, gzipped
  idx/expected_{mnist,fashion-mnist}_t10k_x.f32                 uint8 / 255 in float32
  jsc_h5/jsc/<MASE's HDF5 file name>                            t_allpar_new, float32 fields
  jsc_h5_f64/jsc/<MASE's HDF5 file name>                        the same with float64 fields
  jsc_csv/jsc/hls4ml_lhc_jets_hlf.csv                           OpenML-style CSV, class column
  <each jsc dir>/expected_{train,test}_{x.f32,y.i64}            MASE's preprocessing output
  csv/tabular.csv, csv/expected_{train,test}_{x.f32,y.i64}      generic csv:PATH (label 'kind')
  numpy/perm_seed{S}_n{N}.i64                                   RandomState(S).permutation(N)
  numpy/perm_seed42_n1000000.sha256                             SHA-256 of that permutation
  numpy/split_indices.txt                                       "n;train,...;test,..." lines
  bad_h5/{missing_field,not_compound,huge_rows}/jsc/<MASE's HDF5 name>  HDF5 files the loader rejects
"""
import gzip
import hashlib
import os
import struct
import sys

import h5py
import numpy as np
import pandas as pd
from sklearn import preprocessing
from sklearn.model_selection import train_test_split

JSC_FEATURES = [
    "j_zlogz", "j_c1_b0_mmdt", "j_c1_b1_mmdt", "j_c1_b2_mmdt", "j_c2_b1_mmdt", "j_c2_b2_mmdt",
    "j_d2_b1_mmdt", "j_d2_b2_mmdt", "j_d2_a1_b1_mmdt", "j_d2_a1_b2_mmdt", "j_m2_b1_mmdt",
    "j_m2_b2_mmdt", "j_n2_b1_mmdt", "j_n2_b2_mmdt", "j_mass_mmdt", "j_multiplicity",
]
JSC_LABELS = ["j_g", "j_q", "j_w", "j_z", "j_t"]
JSC_H5_NAME = "processed-pythia82-lhc13-all-pt1-50k-r1_h022_e0175_t220_nonu_truth.z"


def write_raw(path, array, dtype):
    np.ascontiguousarray(array, dtype=dtype).astype(np.dtype(dtype).newbyteorder("<")).tofile(
        path)


def idx_bytes(array):
    magic = struct.pack(">I", 0x800 | array.ndim)
    dims = b"".join(struct.pack(">I", d) for d in array.shape)
    return magic + dims + np.ascontiguousarray(array, dtype=np.uint8).tobytes()


def make_idx(out, rng):
    for name, compress in (("mnist", False), ("fashion-mnist", True)):
        d = os.path.join(out, "idx", name)
        os.makedirs(d, exist_ok=True)
        for prefix, n in (("train", 20), ("t10k", 12)):
            images = rng.randint(0, 256, size=(n, 28, 28)).astype(np.uint8)
            images[0, 0, :2] = (0, 255)  # both ends of the range
            labels = (np.arange(n) * 7 + 3) % 10
            for kind, arr in (("images-idx3", images), ("labels-idx1", labels)):
                path = os.path.join(d, f"{prefix}-{kind}-ubyte")
                data = idx_bytes(arr)
                if compress:
                    # mtime=0: reproducible bytes.
                    with open(path + ".gz", "wb") as f:
                        f.write(gzip.compress(data, mtime=0))
                else:
                    with open(path, "wb") as f:
                        f.write(data)
            if prefix == "t10k":
                # torchvision ToTensor(): img.to(float32).div(255).
                x = images.astype(np.float32) / np.float32(255)
                write_raw(os.path.join(out, "idx", f"expected_{name}_t10k_x.f32"), x, "f4")


def jsc_rows(rng, n_unique=280, n_dup=20):
    """Raw jets: features with JSC-like ranges, one-hot labels, duplicates mixed in."""
    scales = np.array([1.5, .2, .1, .05, .3, .2, 2, 3, 1, 1.5, .1, .05, .2, .1, 40, 15])
    offsets = np.array([-3, .3, .15, .05, .2, .1, 2, 3, 1.5, 2, .05, .02, .3, .2, 60, 30])
    x = (rng.randn(n_unique, 16) * scales + offsets).astype(np.float32)
    x[:, 15] = np.round(np.abs(x[:, 15]))  # multiplicity is a count
    x[5, 3] = 0.0
    y = rng.randint(0, 5, size=n_unique)
    rows = [(x[i], y[i]) for i in range(n_unique)]
    for _ in range(n_dup):  # exact copies, somewhere after their original
        src = rng.randint(0, len(rows))
        rows.insert(rng.randint(src + 1, len(rows) + 1), (rows[src][0].copy(), rows[src][1]))
    rows.append((x[7].copy(), (y[7] + 1) % 5))  # same features, other label: kept
    neg = x[5].copy()
    neg[3] = -0.0  # pandas treats -0.0 == 0.0: dropped as a duplicate of row 5
    rows.append((neg, y[5]))
    feats = np.stack([r[0] for r in rows])
    labels = np.array([r[1] for r in rows])
    return feats, labels


def mase_expected(features_df_values, labels_values, out_dir):
    """MASE's _preprocess_jsc_dataset from the point it has X and the one-hot Y."""
    X_train_val, X_test, Y_train_val, Y_test = train_test_split(
        features_df_values, labels_values, test_size=0.2, random_state=42)
    scaler = preprocessing.StandardScaler().fit(X_train_val)
    X_train_val = scaler.transform(X_train_val)
    X_test = scaler.transform(X_test)
    for split, X, Y in (("train", X_train_val, Y_train_val), ("test", X_test, Y_test)):
        write_raw(os.path.join(out_dir, f"expected_{split}_x.f32"), X, "f4")
        y = Y if Y.ndim == 1 else np.argmax(Y, axis=1)  # torch.max(Y, 1)[1] for one-hot rows
        write_raw(os.path.join(out_dir, f"expected_{split}_y.i64"), y, "i8")
    return len(X_train_val), len(X_test)


def make_jsc_h5(out, rng, feature_dtype, subdir):
    feats, labels = jsc_rows(rng)
    n = len(feats)
    onehot = np.eye(5, dtype=np.float32)[labels]
    # Extra fields and a field order unlike MASE's: the loader must read by name.
    fields = [("j_ptfrac", "<f4"), ("j_pt", "<f8"), ("j_index", "<i4")]
    fields += [(name, feature_dtype) for name in reversed(JSC_FEATURES)]
    fields += [(name, "<f4") for name in JSC_LABELS] + [("j_undef", "<f4")]
    rec = np.zeros(n, dtype=fields)
    rec["j_ptfrac"] = rng.rand(n)
    rec["j_pt"] = rng.rand(n) * 1000
    rec["j_index"] = np.arange(n)  # unique per row, but MASE does not read it
    for j, name in enumerate(JSC_FEATURES):
        rec[name] = feats[:, j]
    for k, name in enumerate(JSC_LABELS):
        rec[name] = onehot[:, k]
    d = os.path.join(out, subdir)
    os.makedirs(os.path.join(d, "jsc"), exist_ok=True)
    path = os.path.join(d, "jsc", JSC_H5_NAME)
    with h5py.File(path, "w", libver="earliest", track_order=False) as f:
        f.create_dataset("t_allpar_new", data=rec)
    # MASE, verbatim in effect (dataset/physical/jsc.py):
    with h5py.File(path, "r") as f:
        tree_array = f["t_allpar_new"][()]
    df = pd.DataFrame(tree_array, columns=list(set(JSC_FEATURES + JSC_LABELS)))
    df = df.drop_duplicates()
    sizes = mase_expected(df[JSC_FEATURES].values, df[JSC_LABELS].values, d)
    print(f"{subdir}: {n} rows, {len(df)} after drop_duplicates, train/test {sizes}")


def make_jsc_csv(out, rng):
    feats, labels = jsc_rows(rng)
    classes = np.array(["g", "q", "w", "z", "t"])  # MASE's order
    d = os.path.join(out, "jsc_csv")
    os.makedirs(os.path.join(d, "jsc"), exist_ok=True)
    path = os.path.join(d, "jsc", "hls4ml_lhc_jets_hlf.csv")
    names = [f[2:] for f in JSC_FEATURES]
    with open(path, "w", newline="") as f:
        f.write(",".join(names + ["class"]) + "\n")
        for i, (x, y) in enumerate(zip(feats, labels)):
            cells = ["%.7g" % v for v in x.astype(np.float64)]
            # OpenML quotes some nominal values; both spellings must load the same.
            label = classes[y] if i % 3 else '"%s"' % classes[y]
            f.write(",".join(cells + [label]) + ("\r\n" if i % 5 == 0 else "\n"))
    # round_trip: Python float() parsing, correctly rounded like the C++ std::from_chars.
    df = pd.read_csv(path, float_precision="round_trip")
    df = df.drop_duplicates()
    y = df["class"].map({c: k for k, c in enumerate(classes)}).values.astype(np.int64)
    sizes = mase_expected(df[names].values, y, d)
    print(f"jsc_csv: {len(feats)} rows, {len(df)} after drop_duplicates, train/test {sizes}")


def make_generic_csv(out, rng):
    d = os.path.join(out, "csv")
    os.makedirs(d, exist_ok=True)
    n = 90
    kinds = np.array(["setosa", "versicolor", "virginica", "Zeta"])
    df = pd.DataFrame({
        "width": np.round(rng.rand(n) * 10, 3),
        "kind": kinds[rng.randint(0, 4, size=n)],
        "height": np.round(rng.randn(n) * 100 + 5, 5),
        "constant": np.full(n, 2.5),
        "count": rng.randint(0, 50, size=n),
    })
    path = os.path.join(d, "tabular.csv")
    df.to_csv(path, index=False)
    df = pd.read_csv(path, float_precision="round_trip")
    features = [c for c in df.columns if c != "kind"]
    y = preprocessing.LabelEncoder().fit_transform(df["kind"])  # sorted unique strings
    X = df[features].values.astype(np.float64)
    X_train, X_test, y_train, y_test = train_test_split(X, y, test_size=0.2, random_state=42)
    scaler = preprocessing.StandardScaler().fit(X_train)
    for split, X_, y_ in (("train", scaler.transform(X_train), y_train),
                          ("test", scaler.transform(X_test), y_test)):
        write_raw(os.path.join(d, f"expected_{split}_x.f32"), X_, "f4")
        write_raw(os.path.join(d, f"expected_{split}_y.i64"), y_, "i8")
    print(f"csv: {n} rows, scale_ = {scaler.scale_}")


def make_bad_h5(out):
    base = os.path.join(out, "bad_h5")
    # The compound dataset without j_multiplicity and j_t.
    d = os.path.join(base, "missing_field", "jsc")
    os.makedirs(d, exist_ok=True)
    fields = [(n, "<f4") for n in JSC_FEATURES[:-1] + JSC_LABELS[:-1]]
    with h5py.File(os.path.join(d, JSC_H5_NAME), "w", libver="earliest") as f:
        f.create_dataset("t_allpar_new", data=np.zeros(4, dtype=fields))
    # A plain 2-D float array instead of named fields.
    d = os.path.join(base, "not_compound", "jsc")
    os.makedirs(d, exist_ok=True)
    with h5py.File(os.path.join(d, JSC_H5_NAME), "w", libver="earliest") as f:
        f.create_dataset("t_allpar_new", data=np.zeros((4, 21), dtype="<f4"))
    make_bad_h5_huge_rows(out)


def make_bad_h5_huge_rows(out):
    # A dataspace of 2^40 records with none stored (chunked, never written): the file is a few
    # KB, so the loader must refuse before allocating for the rows.
    d = os.path.join(out, "bad_h5", "huge_rows", "jsc")
    os.makedirs(d, exist_ok=True)
    fields = [(n, "<f4") for n in JSC_FEATURES + JSC_LABELS]
    with h5py.File(os.path.join(d, JSC_H5_NAME), "w", libver="earliest") as f:
        f.create_dataset("t_allpar_new", shape=(2**40,), dtype=fields, chunks=(64,))


def make_numpy(out):
    d = os.path.join(out, "numpy")
    os.makedirs(d, exist_ok=True)
    for seed, n in [(42, k) for k in (1, 2, 3, 5, 10, 100, 1000, 4097)] + [(0, 1000)]:
        perm = np.random.RandomState(seed).permutation(n)
        write_raw(os.path.join(d, f"perm_seed{seed}_n{n}.i64"), perm, "i8")
    perm = np.random.RandomState(42).permutation(1000000).astype("<i8")
    with open(os.path.join(d, "perm_seed42_n1000000.sha256"), "w") as f:
        f.write(hashlib.sha256(perm.tobytes()).hexdigest() + "\n")
    with open(os.path.join(d, "split_indices.txt"), "w") as f:
        for n in (2, 5, 6, 10, 11, 99, 1001):
            train, test = train_test_split(np.arange(n), test_size=0.2, random_state=42)
            f.write("%d;%s;%s\n" % (n, ",".join(map(str, train)), ",".join(map(str, test))))


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "data")
    rng = np.random.RandomState(20240611)
    make_idx(out, rng)
    make_jsc_h5(out, rng, "<f4", "jsc_h5")
    make_jsc_h5(out, rng, "<f8", "jsc_h5_f64")
    make_jsc_csv(out, rng)
    make_generic_csv(out, rng)
    make_bad_h5(out)
    make_numpy(out)


if __name__ == "__main__":
    main()
