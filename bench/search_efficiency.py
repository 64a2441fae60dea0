#!/usr/bin/python3
"""Sample efficiency of qsearch's samplers and Optuna 3.1's on one search space (issue 9,
"Measure"); driver: bench/search_efficiency.sh.

For a config (default configs/lenet5_mixed.toml, 24^5 = 7,962,624 configurations):

  1. qsearch's samplers: `qsearch --threads 1 search --config C --sampler S --seed k --trials N
     --out WORK/qsearch_S_k --quiet`, one study per (sampler, seed); the trials are read from its
     study.db in trial order (every trial is one evaluation: probes of the sensitivity sampler
     and pruned trials included; only COMPLETE non-probe trials are points). A sampler qsearch
     does not know (e.g. "sensitivity" before it is merged) is skipped with a note.
     "S+P" runs `--sampler S --proxy P` (e.g. sensitivity+fisher: gradient proxies, no probes).
  2. Optuna 3.1's TPESampler (univariate, and multivariate=True), NSGAIISampler and
     RandomSampler, seeded, over MASE's index parameters (one trial.suggest_int(name, 0,
     len(choices) - 1) per flattened node/config/field key, in the space's order, as MASE's
     SearchStrategyOptuna does; mase.md §4.2), in-memory study, the config's directions. Each
     run evaluates through ONE long-running `qsearch objective` process (docs/search.md,
     "Driving qsearch from Python"), so Optuna sees exactly qsearch's landscape.
  3. Every evaluation (index tuple -> objective values) goes into a SQLite cache (--cache); a
     configuration already in it is not evaluated again (the landscape is deterministic: checked
     at start by re-evaluating cached configurations, and every qsearch trial's values must
     equal the cache's). Runs still count every trial as an evaluation, repeated ones included.
  4. The best-known front: the non-dominated points of everything in the cache (all runs of this
     and earlier invocations, plus long runs, --truth-runs) and then an exhaustive local search
     around it: every neighbour (one parameter of one layer one index step) of every front
     configuration is evaluated, repeated until a round adds no non-dominated point. Written to
     --front (bench/data/<config>_front.json) with how it was obtained.
  5. Per run: hypervolume of the points found in the first 100 / 300 / 1000 evaluations over the
     best-known front's, with a FIXED reference point (maximised objectives: 0, e.g. accuracy 0;
     minimised objectives: their value at the configuration with every parameter at its last
     choice, i.e. the space's maximum of 0.2 x average bitwidth for the shipped configs);
     evaluations until 90 % and 99 % of it; the fraction of evaluations that repeated a
     configuration already evaluated in the same run. Printed as a Markdown table (and
     WORK/results.md, WORK/results.json).

  /usr/bin/python3 bench/search_efficiency.py --build build [--config configs/lenet5_mixed.toml]
"""
import argparse
import concurrent.futures as futures
import datetime
import hashlib
import json
import math
import os
import random
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
import warnings

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

QSEARCH_SAMPLERS = "tpe,nsgaii,random,qmc,sensitivity"
# Optuna 3.1's TPE on these 39 parameters costs about 1 s per trial at 400 trials (2-core machine
# under load; it grows with the history), so its runs stop at 300 trials by default; pass
# --optuna-samplers tpe,tpe-multivariate,nsgaii,random for 1000 (~20 min per TPE run).
OPTUNA_SAMPLERS = "tpe:300,tpe-multivariate:300,nsgaii,random"
TRUTH_RUNS = "nsgaii:2000:100"
BUDGETS = (100, 300, 1000)


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------------------------------------
# qsearch objective process


class Evaluator:
    """One long-running `qsearch objective` process."""

    def __init__(self, qsearch, config, extra=()):
        self.proc = subprocess.Popen(
            [qsearch, "--threads", "1", "objective", "--config", config, "--quiet", *extra],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, cwd=ROOT)

    def __call__(self, index):
        self.proc.stdin.write(json.dumps({"index": list(index)}) + "\n")
        self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise SystemExit("search_efficiency: qsearch objective ended unexpectedly")
        answer = json.loads(line)
        if "error" in answer:
            raise SystemExit(f"search_efficiency: qsearch objective refused {index}: "
                             f"{answer['error']}")
        return answer.get("values")  # None: a FAIL configuration

    def close(self):
        self.proc.stdin.close()
        if self.proc.wait() != 0:
            raise SystemExit("search_efficiency: qsearch objective exited with an error")


def describe(qsearch, config):
    out = subprocess.run([qsearch, "objective", "--config", config, "--describe"], cwd=ROOT,
                         capture_output=True, text=True)
    if out.returncode != 0:
        raise SystemExit(f"search_efficiency: qsearch objective --describe failed:\n{out.stderr}")
    return json.loads(out.stdout)


# ---------------------------------------------------------------------------------------------
# Evaluation cache: index tuple -> values (None for a FAIL configuration)


def key_of(index):
    return ",".join(str(int(i)) for i in index)


def index_of(key):
    return tuple(int(i) for i in key.split(","))


class Cache:
    def __init__(self, path, fingerprint):
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        self.db = sqlite3.connect(path)
        self.db.execute("create table if not exists meta (k text primary key, v text)")
        self.db.execute("create table if not exists evals (key text primary key, vals text)")
        self.db.execute("create table if not exists runs (key text primary key, trace text)")
        row = self.db.execute("select v from meta where k = 'fingerprint'").fetchone()
        if row and row[0] != fingerprint:
            raise SystemExit(
                f"search_efficiency: {path} caches another space or objective (the config's "
                "--describe differs); delete it or pass another --cache")
        self.db.execute("insert or replace into meta values ('fingerprint', ?)", (fingerprint,))
        self.db.commit()
        self.data = {k: json.loads(v) for k, v in self.db.execute("select key, vals from evals")}

    def add(self, items):
        """items: {key: values}. Returns the keys whose values differ from the cached ones."""
        differ = []
        new = []
        for k, v in items.items():
            if k in self.data:
                if self.data[k] != v:
                    differ.append(k)
            else:
                self.data[k] = v
                new.append((k, json.dumps(v)))
        self.db.executemany("insert or ignore into evals values (?, ?)", new)
        self.db.commit()
        return differ


# ---------------------------------------------------------------------------------------------
# Pareto fronts and 2-D hypervolume, in minimisation form (maximised objectives negated)


def to_min(values, signs):
    return tuple(s * v for s, v in zip(signs, values))


def nondominated(points):
    """points: iterable of minimisation tuples -> the set of non-dominated ones (2-D)."""
    pts = sorted(set(points))
    front, best2 = [], math.inf
    for p in pts:
        if p[1] < best2:
            front.append(p)
            best2 = p[1]
    return front


def hypervolume(points, ref):
    """2-D hypervolume of minimisation points dominated region bounded by ref."""
    hv, prev2 = 0.0, ref[1]
    for p in nondominated(q for q in points if q[0] < ref[0] and q[1] < ref[1]):
        hv += (ref[0] - p[0]) * (prev2 - p[1])
        prev2 = p[1]
    return hv


class RunningFront:
    """Hypervolume after each added point."""

    def __init__(self, ref):
        self.ref, self.front, self.hv = ref, [], 0.0

    def add(self, p):
        if any(q[0] <= p[0] and q[1] <= p[1] for q in self.front):
            return
        self.front = nondominated(self.front + [p])
        self.hv = hypervolume(self.front, self.ref)


# ---------------------------------------------------------------------------------------------
# Runs. A trace is a list of evaluations in order: {"key": index key or None (probe), "values":
# objective values or None (failed, pruned, probe)}.


def qsearch_run(args, sampler, seed, trials, tag):
    out = os.path.join(args.work, f"{args.stem}_{tag}_{sampler}_{seed}")
    shutil.rmtree(out, ignore_errors=True)
    t0 = time.time()
    # "sensitivity+fisher": the sensitivity sampler with a gradient proxy instead of probes.
    name, _, proxy = sampler.partition("+")
    r = subprocess.run([args.qsearch, "--threads", "1", "search", "--config", args.config,
                        "--sampler", name, "--seed", str(seed), "--trials", str(trials),
                        "--out", out, "--quiet"] + (["--proxy", proxy] if proxy else []),
                       cwd=ROOT, capture_output=True, text=True)
    wall = time.time() - t0
    if r.returncode != 0:
        return {"engine": "qsearch", "sampler": sampler, "seed": seed, "error": r.stderr.strip()}
    db = sqlite3.connect(os.path.join(out, "study.db"))
    params, values, probes = {}, {}, set()
    # study.db has Optuna's schema: a trial's params are rows in the space's order (param_id).
    for tid, v in db.execute("select trial_id, param_value from trial_params order by param_id"):
        p = params.setdefault(tid, {})
        p[len(p)] = int(v)
    for tid, obj, v in db.execute("select trial_id, objective, value from trial_values"):
        values.setdefault(tid, {})[obj] = v
    for (tid,) in db.execute("select trial_id from trial_system_attributes where key = 'probe'"):
        probes.add(tid)
    trace = []
    for tid, number, state in db.execute("select trial_id, number, state from trials "
                                         "order by number"):
        probe = tid in probes
        p = params.get(tid, {})
        key = None if probe else key_of(p[i] for i in sorted(p))
        vals = None
        if state == "COMPLETE" and not probe:
            vals = [values[tid][o] for o in sorted(values[tid])]
        trace.append({"key": key, "values": vals, "state": state, "probe": probe})
    return {"engine": "qsearch", "sampler": sampler, "seed": seed, "trace": trace, "wall_s": wall}


def make_optuna_sampler(name, seed):
    import optuna
    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed)
    if name == "tpe-multivariate":
        return optuna.samplers.TPESampler(seed=seed, multivariate=True)
    if name == "nsgaii":
        return optuna.samplers.NSGAIISampler(seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise SystemExit(f"search_efficiency: unknown Optuna sampler '{name}' (known: "
                     f"{OPTUNA_SAMPLERS})")


def optuna_run(args, space, cache, sampler, seed, trials):
    """Runs in a worker process; cache is this process's copy (read only for the parent)."""
    import optuna
    warnings.filterwarnings("ignore")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    names = [(p["name"], len(p["choices"])) for p in space["parameters"]]
    directions = [o["direction"] for o in space["objectives"]]
    evaluator = None
    trace, new, timing = [], {}, {"eval_s": 0.0}

    def objective(trial):
        nonlocal evaluator
        idx = [trial.suggest_int(name, 0, n - 1) for name, n in names]
        k = key_of(idx)
        if k not in cache:
            if evaluator is None:
                evaluator = Evaluator(args.qsearch, args.config)
            t0 = time.perf_counter()
            cache[k] = new[k] = evaluator(idx)
            timing["eval_s"] += time.perf_counter() - t0
        vals = cache[k]
        trace.append({"key": k, "values": vals, "state": "COMPLETE" if vals else "FAIL",
                      "probe": False})
        if vals is None:
            raise RuntimeError("configuration failed")
        return vals

    study = optuna.create_study(directions=directions,
                                sampler=make_optuna_sampler(sampler, seed))
    t0 = time.time()
    study.optimize(objective, n_trials=trials, catch=(RuntimeError,))
    wall = time.time() - t0
    if evaluator is not None:
        evaluator.close()
    return {"engine": "optuna", "sampler": sampler, "seed": seed, "trace": trace, "new": new,
            "wall_s": wall, "eval_s": timing["eval_s"], "optuna": optuna.__version__}


def optuna_worker(argv):
    """--optuna-worker SAMPLER SEED TRIALS OUT: one Optuna run in its own process, reading the
    cache (a snapshot) and writing its trace and new evaluations to OUT as JSON."""
    ap = argparse.ArgumentParser()
    ap.add_argument("sampler")
    ap.add_argument("seed", type=int)
    ap.add_argument("trials", type=int)
    ap.add_argument("out")
    ap.add_argument("--qsearch", required=True)
    ap.add_argument("--config", required=True)
    ap.add_argument("--cache", required=True)
    a = ap.parse_args(argv)
    space = describe(a.qsearch, a.config)
    db = sqlite3.connect(a.cache)
    cache = {k: json.loads(v) for k, v in db.execute("select key, vals from evals")}
    db.close()
    r = optuna_run(a, space, cache, a.sampler, a.seed, a.trials)
    with open(a.out + ".tmp", "w") as f:
        json.dump(r, f)
    os.replace(a.out + ".tmp", a.out)


def run_optuna_task(args, sampler, seed, trials):
    out = os.path.join(args.work, f"{args.stem}_optuna_{sampler}_{seed}_{trials}.json")
    r = subprocess.run([sys.executable, os.path.abspath(__file__), "--optuna-worker", sampler,
                        str(seed), str(trials), out, "--qsearch", args.qsearch, "--config",
                        args.config, "--cache", args.cache], cwd=ROOT, capture_output=True,
                       text=True)
    if r.returncode != 0:
        raise SystemExit(f"search_efficiency: Optuna {sampler} seed {seed} failed:\n{r.stderr}")
    with open(out) as f:
        return json.load(f)


def parse_runs(spec, default_trials):
    """"tpe,nsgaii:300" -> [("tpe", default_trials), ("nsgaii", 300)]."""
    out = []
    for item in filter(None, spec.split(",")):
        name, _, n = item.partition(":")
        out.append((name, int(n) if n else default_trials))
    return out


# ---------------------------------------------------------------------------------------------
# Best-known front


def local_search(args, space, cache, signs, ref, log_every=500):
    """Evaluates every one-step neighbour of the cache's front until no round adds a
    non-dominated point. Returns (rounds, evaluations made)."""
    sizes = [len(p["choices"]) for p in space["parameters"]]
    rounds = made = 0
    while True:
        pts = {k: to_min(v, signs) for k, v in cache.data.items() if v is not None}
        front = set(nondominated(pts.values()))
        front_keys = [k for k, p in pts.items() if p in front]
        todo = []
        seen = set()
        for k in front_keys:
            idx = list(index_of(k))
            for i, n in enumerate(sizes):
                for step in (-1, 1):
                    j = idx[i] + step
                    if 0 <= j < n:
                        nb = idx[:i] + [j] + idx[i + 1:]
                        nk = key_of(nb)
                        if nk not in cache.data and nk not in seen:
                            seen.add(nk)
                            todo.append(nb)
        rounds += 1
        log(f"local search round {rounds}: front {len(front)} points ({len(front_keys)} "
            f"configurations), {len(todo)} unevaluated neighbours")
        if not todo:
            return rounds, made
        results = evaluate_many(args, todo)
        made += len(todo)
        cache.add(results)
        new_front = set(nondominated(to_min(v, signs) for v in cache.data.values()
                                     if v is not None))
        if new_front == front:
            return rounds, made


def evaluate_many(args, indices):
    """Evaluates configurations on args.jobs objective processes; {key: values}."""
    chunks = [indices[i::args.jobs] for i in range(args.jobs)]
    out = {}
    lock = threading.Lock()

    def work(chunk):
        ev = Evaluator(args.qsearch, args.config)
        for idx in chunk:
            v = ev(idx)
            with lock:
                out[key_of(idx)] = v
        ev.close()

    threads = [threading.Thread(target=work, args=(c,)) for c in chunks if c]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return out


# ---------------------------------------------------------------------------------------------
# Scoring and the table


def score(run, signs, ref, front_hv):
    rf = RunningFront(ref)
    at = {}
    reach = {0.9: None, 0.99: None}
    seen, dups, evals = set(), 0, 0
    for i, t in enumerate(run["trace"]):
        evals = i + 1
        if t["key"] is not None:
            if t["key"] in seen:
                dups += 1
            seen.add(t["key"])
        if t["values"] is not None:
            rf.add(to_min(t["values"], signs))
        ratio = rf.hv / front_hv
        for goal in reach:
            if reach[goal] is None and ratio >= goal - 1e-12:
                reach[goal] = evals
        if evals in BUDGETS:
            at[evals] = ratio
    final = rf.hv / front_hv
    for b in BUDGETS:
        if b not in at and evals < b:
            at[b] = None  # the run stopped earlier (e.g. exhausted)
    return {"hv": at, "final": final, "evals": evals, "reach": reach,
            "dup_fraction": dups / max(1, evals),
            "probes": sum(1 for t in run["trace"] if t["probe"])}


def label(run):
    if run["engine"] == "qsearch":
        return f"qsearch {run['sampler']}"
    return f"Optuna {run.get('optuna', '')} {run['sampler'].replace('-', ', ')}".replace("  ", " ")


def fmt_ratio(xs):
    xs = [x for x in xs if x is not None]
    if not xs:
        return "-"
    mean = sum(xs) / len(xs)
    s = f"{mean:.3f}".lstrip("0")
    if len(xs) > 1:
        s += f" ({min(xs):.3f}–{max(xs):.3f})".replace("0.", ".")
    return s


def fmt_reach(xs):
    return ", ".join("never" if x is None else str(x) for x in xs)


def fmt_dups(xs):
    lo, hi = min(xs) * 100, max(xs) * 100
    return f"{lo:.0f} %" if round(lo) == round(hi) else f"{lo:.0f}–{hi:.0f} %"


def table(scored):
    groups = {}
    for run, s in scored:
        groups.setdefault(label(run), []).append((run, s))
    cols = [b for b in BUDGETS if any(s['evals'] >= b for _, s in scored)]
    lines = ["| sampler | " + "".join(f"HV @{b} | " for b in cols) +
             "evaluations to 90 % | to 99 % | repeated configurations | seeds × evaluations |",
             "|---|" + "---|" * len(cols) + "---|---|---|---|"]
    for name, rows in groups.items():
        rows.sort(key=lambda r: r[0]["seed"])
        cells = [fmt_ratio([s["hv"].get(b) for _, s in rows]) for b in cols]
        lines.append(
            f"| {name} | " + "".join(c + " | " for c in cells) +
            f"{fmt_reach([s['reach'][0.9] for _, s in rows])}"
            f" | {fmt_reach([s['reach'][0.99] for _, s in rows])}"
            f" | {fmt_dups([s['dup_fraction'] for _, s in rows])}"
            f" | {', '.join(str(r['seed']) for r, _ in rows)} × "
            f"{'/'.join(sorted({str(s['evals']) for _, s in rows}))} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--build", default="build", help="build directory holding bin/qsearch")
    ap.add_argument("--config", default="configs/lenet5_mixed.toml")
    ap.add_argument("--qsearch-samplers", default=QSEARCH_SAMPLERS,
                    help="qsearch samplers to run, comma separated, each optionally NAME:TRIALS "
                         "(unknown ones are skipped with a note)")
    ap.add_argument("--optuna-samplers", default=OPTUNA_SAMPLERS,
                    help=f"Optuna samplers to run, NAME[:TRIALS],... of: {OPTUNA_SAMPLERS}")
    ap.add_argument("--seeds", default="0,1,2")
    ap.add_argument("--trials", type=int, default=1000, help="evaluations per run")
    ap.add_argument("--truth-runs", default=TRUTH_RUNS,
                    help="long qsearch runs for the best-known front, sampler:trials:seed,... "
                         "('' for none)")
    ap.add_argument("--no-local-search", action="store_true")
    ap.add_argument("--jobs", type=int, default=2, help="runs (processes) at a time")
    ap.add_argument("--cache", help="evaluation cache (default WORK/<config>_cache.sqlite)")
    ap.add_argument("--front", help="best-known front file (default bench/data/<config>_front.json)")
    ap.add_argument("--work", help="scratch directory (default BUILD/bench_models/search_efficiency)")
    ap.add_argument("--rerun-optuna", action="store_true",
                    help="run Optuna again even when the cache holds the same run")
    ap.add_argument("--rerun-qsearch", action="store_true",
                    help="run qsearch's searches again even when the cache holds the same run "
                         "(same qsearch binary, sampler, seed and trials)")
    ap.add_argument("--check", type=int, default=20,
                    help="cached configurations re-evaluated to check determinism")
    args = ap.parse_args()

    warnings.filterwarnings("ignore")  # Optuna's ExperimentalWarning for multivariate
    stem = args.stem = os.path.splitext(os.path.basename(args.config))[0]
    args.build = os.path.abspath(args.build)
    args.qsearch = os.path.join(args.build, "bin", "qsearch")
    if not os.access(args.qsearch, os.X_OK):
        raise SystemExit(f"search_efficiency: {args.qsearch} not built (make build)")
    args.work = os.path.abspath(args.work or os.path.join(args.build, "bench_models",
                                                          "search_efficiency"))
    os.makedirs(args.work, exist_ok=True)
    args.cache = args.cache or os.path.join(args.work, f"{stem}_cache.sqlite")
    args.front = args.front or os.path.join(ROOT, "bench", "data", f"{stem}_front.json")
    seeds = [int(s) for s in args.seeds.split(",") if s != ""]
    started = time.time()

    space = describe(args.qsearch, args.config)
    if len(space["objectives"]) != 2:
        raise SystemExit("search_efficiency: two objectives needed (2-D hypervolume)")
    signs = [-1.0 if o["direction"] == "maximize" else 1.0 for o in space["objectives"]]
    fingerprint = hashlib.sha256(json.dumps(space, sort_keys=True).encode()).hexdigest()
    cache = Cache(args.cache, fingerprint)
    log(f"{args.config}: {len(space['parameters'])} parameters, {space['size']} configurations; "
        f"cache {args.cache}: {len(cache.data)} evaluations")

    # Determinism: the same configuration gives the same values (re-evaluate some cached ones,
    # or evaluate a few random ones twice on a fresh cache).
    rng = random.Random(0)
    sizes = [len(p["choices"]) for p in space["parameters"]]
    sample = rng.sample(sorted(cache.data), min(args.check, len(cache.data)))
    ev = Evaluator(args.qsearch, args.config)
    if not sample:
        fresh = [key_of(rng.randrange(n) for n in sizes) for _ in range(max(1, args.check // 4))]
        cache.add({k: ev(index_of(k)) for k in fresh})
        sample = fresh
    t0 = time.perf_counter()
    for k in sample:
        if ev(index_of(k)) != cache.data[k]:
            raise SystemExit(f"search_efficiency: configuration {k} now gives other values than "
                             f"the cache holds: the landscape changed; delete {args.cache}")
    per_eval_ms = (time.perf_counter() - t0) / len(sample) * 1e3
    # The fixed reference point: 0 for maximised objectives, the value at the configuration
    # with every parameter at its last choice for minimised ones.
    top = ev([n - 1 for n in sizes])
    ev.close()
    ref = tuple(0.0 if s < 0 else s * v for s, v in zip(signs, top))
    ref_shown = [s * r + 0.0 for s, r in zip(signs, ref)]  # + 0.0: no "-0.0"
    log(f"determinism: {len(sample)} configurations re-evaluated, identical "
        f"({per_eval_ms:.1f} ms per evaluation through the pipe); reference point "
        f"{ref_shown}")

    # 1. All runs, args.jobs at a time, longest first: Optuna's TPE runs (Python overhead
    # grows with the history), the long qsearch runs, qsearch's samplers, the other Optuna runs.
    # An Optuna run already in the cache (same sampler, seed, trials, Optuna version and
    # landscape) is reused: the lead re-runs this after merges, and only qsearch changes.
    import optuna
    runs, skipped = [], []
    tasks = []
    for s, n in parse_runs(args.optuna_samplers, args.trials):
        make_optuna_sampler(s, 0)  # an unknown name fails now, not after an hour
        key = f"optuna|{s}|{{}}|{n}|{optuna.__version__}"
        tasks += [(0 if s.startswith("tpe") else 3, "optuna", s, k, n, key.format(k))
                  for k in seeds]
    for spec in filter(None, args.truth_runs.split(",")):
        s, n, k = spec.split(":")
        tasks.append((1, "truth", s, int(k), int(n), None))
    for s, n in parse_runs(args.qsearch_samplers, args.trials):
        tasks += [(2, "qsearch", s, k, n, None) for k in seeds]
    tasks.sort(key=lambda t: t[0])
    stored = dict(cache.db.execute("select key, trace from runs"))

    with open(args.qsearch, "rb") as f:
        binary = hashlib.sha256(f.read()).hexdigest()[:16]

    def do(task):
        _, tag, s, k, n, key = task
        if tag != "optuna":
            # Same binary, sampler, seed and trials: the same study (seeded, one job).
            qkey = f"qsearch|{s}|{k}|{n}|{binary}"
            if qkey in stored and not args.rerun_qsearch:
                r = json.loads(stored[qkey])
                r["reused"] = True
                return r
            r = qsearch_run(args, s, k, n, tag)
            if "error" not in r:
                r["cache_key"] = qkey
            return r
        if key in stored and not args.rerun_optuna:
            r = json.loads(stored[key])
            r["new"], r["reused"] = {}, True
            return r
        return run_optuna_task(args, s, k, n)

    with futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        jobs = {pool.submit(do, t): t for t in tasks}
        for f in futures.as_completed(jobs):
            _, tag, s, k, n, key = jobs[f]
            r = f.result()
            if "error" in r:
                log(f"qsearch {s} seed {k}: skipped: {r['error'].splitlines()[-1]}")
                skipped.append(f"qsearch {s}: {r['error'].splitlines()[-1]}")
                continue
            items = {t["key"]: t["values"] for t in r["trace"] if t["values"] is not None}
            items.update(r.pop("new", {}))
            differ = cache.add(items)
            if differ:
                raise SystemExit(f"search_efficiency: {tag} {s} seed {k} has other values than "
                                 f"qsearch objective gives for {len(differ)} configurations, "
                                 f"e.g. {differ[0]}")
            if not r.get("reused"):
                cache.db.execute("insert or replace into runs values (?, ?)",
                                 (r.pop("cache_key", key), json.dumps(r)))
                cache.db.commit()
            how = "reused from the cache" if r.get("reused") else f"{r['wall_s']:.0f}s"
            extra = f", {r['eval_s']:.0f}s evaluating" if "eval_s" in r and not r.get("reused") \
                else ""
            log(f"{'Optuna' if tag == 'optuna' else 'qsearch'} {s} seed {k} ({tag}): "
                f"{len(r['trace'])} trials, {how}{extra}; cache {len(cache.data)}")
            if tag != "truth":
                runs.append(r)

    # 3. The best-known front: everything evaluated, then local search around it.
    rounds = made = 0
    if not args.no_local_search:
        rounds, made = local_search(args, space, cache, signs, ref)
    points = {}
    for k, v in cache.data.items():
        if v is not None:
            points.setdefault(to_min(v, signs), []).append(k)
    front = nondominated(points)
    front_hv = hypervolume(front, ref)
    where = {p: {"index": list(index_of(min(ks))), "configurations": len(ks)}
             for p, ks in points.items()}
    previous = None
    if os.path.exists(args.front):
        with open(args.front) as f:
            previous = json.load(f)
        if previous.get("fingerprint") == fingerprint and previous["hypervolume"] > front_hv:
            # An earlier, larger ground truth of the same space (another cache) stays in.
            for p in previous["points"]:
                where.setdefault(to_min(p["values"], signs),
                                 {"index": p["index"], "configurations": p["configurations"]})
            front = nondominated(list(front) + list(where))
            front_hv = hypervolume(front, ref)
    os.makedirs(os.path.dirname(args.front), exist_ok=True)
    record = {
        "config": args.config,
        "fingerprint": fingerprint,
        "objectives": space["objectives"],
        "reference_point": ref_shown,
        "hypervolume": front_hv,
        "distinct_configurations_evaluated": len(cache.data),
        "obtained_by": (
            f"non-dominated points of every configuration evaluated by the runs of "
            f"bench/search_efficiency.py (qsearch samplers {args.qsearch_samplers}, Optuna "
            f"samplers {args.optuna_samplers}, seeds {args.seeds}, {args.trials} trials each; "
            f"long qsearch runs {args.truth_runs or 'none'}; earlier invocations sharing the "
            f"cache), then {rounds} round(s) of exhaustive local search (every one-step "
            f"neighbour of every front configuration; {made} evaluations this invocation)"),
        "date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
        # Each front point: its objective values, one configuration giving them (choice indices
        # in --describe order) and how many evaluated configurations give them.
        "points": [{"values": [s * x for s, x in zip(signs, p)], **where[p]} for p in front],
    }
    if previous and previous.get("fingerprint") == fingerprint and \
            [p["values"] for p in previous["points"]] == [p["values"] for p in record["points"]]:
        # The same front: keep the file and its account of how it was obtained.
        record = previous
        log(f"best-known front: {len(front)} points, hypervolume {front_hv:.6f}, unchanged "
            f"({args.front} kept)")
    else:
        with open(args.front, "w") as f:
            json.dump(record, f, indent=1)
            f.write("\n")
        log(f"best-known front: {len(front)} points, hypervolume {front_hv:.6f}, from "
            f"{len(cache.data)} distinct configurations; written to {args.front}")

    # 4. Scores.
    order = {("qsearch", s): i for i, (s, _) in enumerate(parse_runs(args.qsearch_samplers, 0))}
    order.update({("optuna", s): 100 + i
                  for i, (s, _) in enumerate(parse_runs(args.optuna_samplers, 0))})
    runs.sort(key=lambda r: (order.get((r["engine"], r["sampler"]), 999), r["seed"]))
    scored = [(r, score(r, signs, ref, front_hv)) for r in runs]
    # A second, more discriminating reference point: the best-known front's nadir (its worst
    # value of each objective) pushed out by 10 % of the front's range, as hypervolume-based
    # comparisons of optimisers usually take it. Only the region near the front counts then,
    # so cheap but inaccurate points (and accurate but costly ones) no longer fill the ratio.
    lo = [min(p[i] for p in front) for i in range(len(ref))]
    hi = [max(p[i] for p in front) for i in range(len(ref))]
    nadir = tuple(h + 0.1 * (h - l) if h > l else h + 1e-9 for l, h in zip(lo, hi))
    nadir_shown = [round(sg * r + 0.0, 6) for sg, r in zip(signs, nadir)]
    nadir_hv = hypervolume(front, nadir)
    scored_nadir = [(r, score(r, signs, nadir, nadir_hv)) for r in runs]
    md = [f"{args.config}: {space['size']:,} configurations, {space['samples_per_trial']} "
          f"samples per evaluation ({space['mode']} engine); {args.trials} evaluations per run, "
          f"seeds {args.seeds}. HV: hypervolume of the points found within that many "
          f"evaluations over the best-known front's ({len(front)} points from "
          f"{len(cache.data):,} distinct configurations evaluated, {rounds} local-search "
          f"rounds), fixed reference point {record['reference_point']}; mean (min–max) over "
          f"seeds. Evaluations to 90 % / 99 %: per seed. Repeated configurations: evaluations "
          f"of a configuration the same run had already evaluated (min–max over seeds).",
          "", table(scored), "",
          f"The same runs against the front's nadir pushed out by 10 % of its range, reference "
          f"point {nadir_shown}:", "", table(scored_nadir), ""]
    if skipped:
        md.append("Skipped: " + "; ".join(sorted(set(skipped))))
        md.append("")
    probes = [f"{label(r)} seed {r['seed']}: {s['probes']}" for r, s in scored if s["probes"]]
    if probes:
        md.append("Probe trials (counted as evaluations): " + ", ".join(probes))
        md.append("")
    elapsed = time.time() - started
    md.append(f"Wall time of this invocation: {elapsed / 60:.1f} min, {args.jobs} runs at a "
              f"time; one evaluation through `qsearch objective` {per_eval_ms:.1f} ms.")
    text = "\n".join(md)
    print(text)
    with open(os.path.join(args.work, f"{stem}_results.md"), "w") as f:
        f.write(text + "\n")
    with open(os.path.join(args.work, f"{stem}_results.json"), "w") as f:
        json.dump([{"engine": r["engine"], "sampler": r["sampler"], "seed": r["seed"],
                    "wall_s": r["wall_s"], **{k: v for k, v in s.items()},
                    "nadir_reference": sn}
                   for (r, s), (_, sn) in zip(scored, scored_nadir)], f, indent=1, default=str)


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--optuna-worker":
        optuna_worker(sys.argv[2:])
    else:
        main()
