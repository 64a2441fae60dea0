"""A trial's storage cost in Optuna's own RDB storage (SQLite file), for comparison with
bench/storage_commit_bench.cc: the same 18 MASE index parameters, 2 objectives and user attrs,
RandomSampler (the cheapest), a trivial objective. Prints one JSON line: mean wall and CPU
milliseconds per trial (ask + suggest_int x 18 + set_user_attr x 4 + tell).

    /usr/bin/python3 bench/optuna_storage_commit.py [--trials 300] [--db /tmp/x/optuna.db]
"""
import argparse
import json
import os
import time
import warnings

warnings.simplefilter("ignore")
import optuna  # noqa: E402

FIELDS = [("data_in_width", 3), ("data_in_frac_width", 3), ("weight_width", 4),
          ("weight_frac_width", 4), ("bias_width", 2), ("bias_frac_width", 2)]
NODES = ["seq_blocks_2", "seq_blocks_5", "seq_blocks_8"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=300)
    ap.add_argument("--db", default="/tmp/qsearch_storage_commit_bench/optuna.db")
    args = ap.parse_args()
    os.makedirs(os.path.dirname(args.db), exist_ok=True)
    if os.path.exists(args.db):
        os.remove(args.db)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(storage="sqlite:///" + args.db,
                                directions=["maximize", "minimize"],
                                sampler=optuna.samplers.RandomSampler(seed=0))
    sampled = {n: dict({"name": "integer", "bypass": False}, **{f: 8 for f, _ in FIELDS})
               for n in NODES}
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for i in range(args.trials):
        trial = study.ask()
        for n in NODES:
            for f, length in FIELDS:
                trial.suggest_int(f"{n}/config/{f}", 0, length - 1)
        acc = 0.9 + 1e-5 * i
        trial.set_user_attr("software_metrics", {"loss": 0.31, "accuracy": acc})
        trial.set_user_attr("hardware_metrics", {"average_bitwidth": 6.5, "memory_density": 4.92})
        trial.set_user_attr("scaled_metrics", {"accuracy": acc, "average_bitwidth": 1.3})
        trial.set_user_attr("sampled_config", sampled)
        study.tell(trial, [acc, 6.5])
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    print(json.dumps({"storage": "optuna-rdb-sqlite", "optuna": optuna.__version__,
                      "trials": args.trials, "wall_ms": round(1e3 * wall / args.trials, 2),
                      "cpu_ms": round(1e3 * cpu / args.trials, 2)}))


if __name__ == "__main__":
    main()
