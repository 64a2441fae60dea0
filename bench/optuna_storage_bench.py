#!/usr/bin/python3
"""Optuna side of the storage-ceiling benchmark (issue 10); mirrors bench/pg_storage_bench.cc.

One worker process: Optuna's RDBStorage on the given URL (PostgreSQL through psycopg2), the
study loaded by name, then N ask/tell cycles with a trivial objective: 18 suggest_int index
params (MASE's space, 3 nodes x 6 fields with 2-4 choices, as sampler_overhead_bench), a
constant value, RandomSampler (the storage is what is measured, not the sampler). Prints one
JSON line {"tool": "optuna", "trials": N, "start": t0, "end": t1} (epoch seconds).

  optuna_storage_bench.py --url URL --study NAME --create
  optuna_storage_bench.py --url URL --study NAME --trials N [--seed S]
"""
import argparse
import json
import time

import optuna

FIELDS = [
    ("data_in_width", 3),
    ("data_in_frac_width", 3),
    ("weight_width", 4),
    ("weight_frac_width", 4),
    ("bias_width", 2),
    ("bias_frac_width", 2),
]
NODES = ["seq_blocks_2", "seq_blocks_5", "seq_blocks_8"]
KEYS = [(f"{node}/config/{field}", n) for node in NODES for field, n in FIELDS]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--study", required=True)
    ap.add_argument("--create", action="store_true")
    ap.add_argument("--trials", type=int, default=0)
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = optuna.storages.RDBStorage(args.url)
    study = optuna.create_study(
        study_name=args.study,
        storage=storage,
        direction="maximize",
        sampler=optuna.samplers.RandomSampler(seed=args.seed),
        load_if_exists=True,
    )
    if args.create:
        return
    t0 = time.time()
    for _ in range(args.trials):
        trial = study.ask()
        for key, n in KEYS:
            trial.suggest_int(key, 0, n - 1)
        study.tell(trial, 1.0)
    t1 = time.time()
    print(json.dumps({"tool": "optuna", "trials": args.trials, "start": t0, "end": t1}))


if __name__ == "__main__":
    main()
