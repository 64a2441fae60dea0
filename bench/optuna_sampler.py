#!/usr/bin/python3
"""Optuna side of the sampler-overhead benchmark (issue 5); mirrors sampler_overhead_bench.cc.

The space is MASE's: one trial.suggest_int(name, 0, len(choices) - 1) per flattened
node/config/field key (mase.md §4.2), 3 nodes x 6 fields with 2-4 choices = 18 index params;
objectives (accuracy max[, average bitwidth min]) as trivial arithmetic on the indices;
in-memory storage. Optuna samples inside suggest_int, so the objective's own time is taken only
around the arithmetic after the suggestions: everything else is Optuna's overhead.

Modes (one JSON line each, same fields as the C++ side):
  full run:  --trials N --samplers random,tpe [--objectives 2]
  prefilled: --prefill FILE [--prefill-count M] [--timed K] --samplers tpe
             adds the first M configurations of FILE (one line of indices per trial, written by
             sampler_overhead_bench --history-out) with their values as COMPLETE trials, then
             times K more trials: the per-trial cost at a history of M trials.
"""
import argparse
import json
import time
import warnings

import optuna
from optuna.distributions import IntDistribution

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


def trivial(idx, n_objectives):
    acc = sum((i + 1) * v for i, v in enumerate(idx)) / 100.0
    bits = sum(idx) / len(idx)
    return [acc, bits][:n_objectives]


def make_sampler(name, seed):
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    raise SystemExit(f"unknown sampler {name}")


def measure(study, trials, n_objectives):
    objective_at, finished_at = [], []

    def objective(trial):
        idx = [trial.suggest_int(name, 0, n - 1) for name, n in KEYS]
        t0 = time.perf_counter()
        values = trivial(idx, n_objectives)
        objective_at.append(time.perf_counter() - t0)
        return values if n_objectives > 1 else values[0]

    def callback(study, trial):
        finished_at.append(time.perf_counter())

    t0, c0 = time.perf_counter(), time.process_time()
    study.optimize(objective, n_trials=trials, callbacks=[callback])
    return time.perf_counter() - t0, time.process_time() - c0, objective_at, finished_at


def report(mode, sampler, n_objectives, history, trials, total, cpu, objective_at, finished_at):
    objective_s = sum(objective_at)
    last = min(100, trials - 1)
    last_span = finished_at[-1] - finished_at[-1 - last]
    print(json.dumps({
        "impl": f"optuna-{optuna.__version__}", "mode": mode, "sampler": sampler,
        "objectives": n_objectives, "history": history, "trials": trials, "total_s": total,
        "objective_s": objective_s,
        "overhead_ms": (total - objective_s) / trials * 1e3,
        "cpu_overhead_ms": (cpu - objective_s) / trials * 1e3,
        "last100_overhead_ms": (last_span - sum(objective_at[-last:])) / last * 1e3,
    }), flush=True)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--trials", type=int, default=1000)
    parser.add_argument("--samplers", default="random,tpe")
    parser.add_argument("--objectives", type=int, default=2, choices=[1, 2])
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--prefill")
    parser.add_argument("--prefill-count", type=int, default=990)
    parser.add_argument("--timed", type=int, default=10)
    args = parser.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore")
    directions = ["maximize", "minimize"][: args.objectives]
    for name in args.samplers.split(","):
        study = optuna.create_study(directions=directions, sampler=make_sampler(name, args.seed))
        if not args.prefill:
            report("full", name, args.objectives, 0, args.trials,
                   *measure(study, args.trials, args.objectives))
            continue
        with open(args.prefill) as f:
            rows = [[int(float(x)) for x in line.split()] for line in f if line.strip()]
        rows = rows[: args.prefill_count]
        if len(rows) < args.prefill_count:
            raise SystemExit(f"{args.prefill} has only {len(rows)} trials")
        dists = {k: IntDistribution(0, n - 1) for k, n in KEYS}
        study.add_trials([
            optuna.trial.create_trial(params={k: v for (k, _), v in zip(KEYS, idx)},
                                      distributions=dists, values=trivial(idx, args.objectives))
            for idx in rows])
        report("prefilled", name, args.objectives, len(rows), args.timed,
               *measure(study, args.timed, args.objectives))


if __name__ == "__main__":
    main()
