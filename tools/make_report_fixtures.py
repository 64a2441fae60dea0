#!/usr/bin/python3
"""Expected MASE report outputs, made with the real libraries, for tests/report/.

MASE writes its search results with Optuna + pandas + tabulate (mase.md section 1.2 and 4.3):
  log.json   study.trials_dataframe(attrs=(number, value, user_attrs, system_attrs, state,
             datetime_start, datetime_complete, duration)).to_json(orient="index", indent=4)
  best.json  a DataFrame of study.best_trials (number, value, software_metrics,
             hardware_metrics, scaled_metrics, sampled_config) .to_json(orient="index", indent=4)
  table      "Best trial(s):\\n" + tabulate(<number + the three metric dicts, beautified>,
             headers="keys", tablefmt="orgtbl")
This script rebuilds those steps (its own code, following MASE's) on small studies and writes,
per case, input.json (the study as qsearch stores it) and the three expected outputs; plus
doubles.tsv: repr(x), pandas' JSON text for x, repr(round(x, 3)) for a few thousand doubles.

Run with Debian's interpreter (python3-optuna, python3-pandas, python3-tabulate):
  /usr/bin/python3 tools/make_report_fixtures.py            # writes tests/fixtures/report/
Made with optuna 3.1.0, pandas 1.5.3, tabulate 0.8.9 (Debian 12).
"""

import datetime
import json
import math
import os
import random
import struct
import sys

import optuna
import pandas as pd
from tabulate import tabulate

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "fixtures", "report")
EPOCH = datetime.datetime(1970, 1, 1)


def naive_utc(ms):
    # Optuna stores naive datetimes and pandas writes naive datetimes as if they were UTC, so a
    # naive UTC time gives back exactly `ms` in the JSON.
    return EPOCH + datetime.timedelta(milliseconds=ms)


def number_text(v):
    return repr(float(v)) if not math.isfinite(v) else v


def beautify(metrics):
    # MASE's beautify_metric (strategies/optuna.py), rewritten.
    out = {}
    for k, v in metrics.items():
        if isinstance(v, (float, int)):
            out[k] = round(v, 3)
        else:
            text = str(v)
            out[k] = text[:20] + "..." if len(text) > 20 else text[:20]
    return out


def write(case, name, text):
    with open(os.path.join(OUT, case, name), "w", encoding="utf-8", newline="") as f:
        f.write(text)


def make_case(case, directions, trials):
    """trials: dicts with state, values, user_attrs (python values), system_attrs, start, end."""
    os.makedirs(os.path.join(OUT, case), exist_ok=True)
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = optuna.create_study(directions=directions)
    for t in trials:
        state = optuna.trial.TrialState[t["state"]]
        study.add_trial(
            optuna.trial.FrozenTrial(
                number=0,
                state=state,
                value=None,
                values=t["values"] if state == optuna.trial.TrialState.COMPLETE else None,
                datetime_start=naive_utc(t["start"]),
                datetime_complete=naive_utc(t["end"]) if t["end"] is not None else None,
                params={},
                distributions={},
                user_attrs=t["user_attrs"],
                system_attrs=t["system_attrs"],
                intermediate_values={},
                trial_id=0,
            )
        )

    log = study.trials_dataframe(
        attrs=("number", "value", "user_attrs", "system_attrs", "state", "datetime_start",
               "datetime_complete", "duration"))
    write(case, "log.json", log.to_json(orient="index", indent=4))

    columns = ["number", "value", "software_metrics", "hardware_metrics", "scaled_metrics",
               "sampled_config"]
    best = pd.DataFrame(columns=columns)
    # MASE tests `study._is_multi_objective` without calling it: always true, so every study
    # takes the best_trials branch and `value` is the list trial.values.
    for trial in study.best_trials:
        best.loc[len(best)] = [trial.number, trial.values] + [trial.user_attrs[c] for c in columns[2:]]
    write(case, "best.json", best.to_json(orient="index", indent=4))

    shown = best.loc[:, ["number", "software_metrics", "hardware_metrics", "scaled_metrics"]]
    dicts = ["software_metrics", "hardware_metrics", "scaled_metrics"]
    shown.loc[:, dicts] = shown.loc[:, dicts].applymap(beautify)
    write(case, "best_table.txt",
          "Best trial(s):\n" + tabulate(shown, headers="keys", tablefmt="orgtbl"))

    study_json = {"name": case, "directions": directions}
    trials_json = []
    for number, t in enumerate(trials):
        trials_json.append({
            "number": number,
            "state": t["state"],
            "values": [number_text(v) for v in t["values"]] if t["state"] == "COMPLETE" else [],
            "user_attrs": {k: json.dumps(v, ensure_ascii=False) for k, v in t["user_attrs"].items()},
            "system_attrs": t["system_attrs"],
            "datetime_start_ms": t["start"],
            "datetime_complete_ms": t["end"] if t["end"] is not None else 0,
        })
    write(case, "input.json",
          json.dumps({"study": study_json, "trials": trials_json}, indent=1, ensure_ascii=False))


def mase_trial(rng, clock, bits, acc, layer_names):
    config = {}
    for name in layer_names:
        if name.endswith("relu"):
            config[name] = {"config": {"name": None}}
        else:
            config[name] = {"config": {"name": "integer", "data_in_width": 8,
                                       "data_in_frac_width": None, "weight_width": bits,
                                       "weight_frac_width": None, "bias_width": bits,
                                       "bias_frac_width": None}}
    start = clock[0]
    clock[0] += rng.randrange(50, 2000)
    return {
        "state": "COMPLETE",
        "values": [acc, bits * 0.2],
        "user_attrs": {
            "software_metrics": {"loss": rng.uniform(0.2, 2.5), "accuracy": acc},
            "hardware_metrics": {"average_bitwidth": float(bits), "memory_density": 32 / bits},
            "scaled_metrics": {"accuracy": acc, "average_bitwidth": bits * 0.2},
            "sampled_config": config,
        },
        "system_attrs": {"worker": "node-1:4242"},
        "start": start,
        "end": clock[0],
    }


def case_mase_multi():
    rng = random.Random(1)
    clock = [1694095030315]
    layers = ["/fc1/Gemm", "/relu", "/fc2/Gemm"]
    trials = []
    for i in range(24):
        bits = rng.choice([2, 4, 8])
        acc = round(rng.uniform(0.3, 0.98), rng.choice([2, 4, 17]))
        trials.append(mase_trial(rng, clock, bits, acc, layers))
    trials.append(dict(trials[5], start=clock[0], end=clock[0] + 7))  # a duplicate front point
    trials.append({"state": "FAIL", "values": [], "user_attrs": {},
                   "system_attrs": {"worker": "node-1:4242",
                                    "fail_reason": "accumulator overflow: 40 bits > 32"},
                   "start": clock[0] + 10, "end": clock[0] + 30})
    trials.append({"state": "RUNNING", "values": [], "user_attrs": {},
                   "system_attrs": {"worker": "node-2:77"}, "start": clock[0] + 40, "end": None})
    make_case("mase_multi", ["maximize", "minimize"], trials)


def case_single_sum():
    rng = random.Random(2)
    clock = [1700000000000]
    trials = []
    for i in range(12):
        bits = rng.choice([2, 4, 8])
        acc = rng.choice([0.5, 0.75, 0.8125, 0.9, 0.66796875])
        t = mase_trial(rng, clock, bits, acc, ["seq_blocks_2"])
        t["values"] = [acc - bits * 0.2]
        t["user_attrs"]["scaled_metrics"] = {"accuracy": acc, "average_bitwidth": -bits * 0.2}
        trials.append(t)
    make_case("single_sum", ["maximize"], trials)


def case_edge_values():
    rng = random.Random(3)
    clock = [1600000000000]
    odd = [1e-05, 0.0005, 0.0015, 2.5e-11, 1e16, 1.5e16, 123456789.123456789, -0.0, -1e-11, 4.0,
           0.5, 1 / 3, 2 / 3, 1e-300, 12345678901234.5, 0.99999999995, 7, -3, True, False]
    trials = []
    for i in range(8):
        t = mase_trial(rng, clock, 4, 0.5, ["x"])
        sw = {"loss": odd[i], "accuracy": odd[-1 - i], "précision": odd[i + 8],
              "note": "a very long string value indeed" if i % 2 else "short",
              "quote": "it's \"quoted\"" if i == 3 else None,
              "list": [1, 2.5, "x/y"], "nested": {"a": {"b": i}}}
        t["user_attrs"]["software_metrics"] = sw
        t["user_attrs"]["hardware_metrics"] = {"average_bitwidth": odd[(i + 4) % len(odd)]}
        t["user_attrs"]["scaled_metrics"] = {"loss": odd[(i + 12) % len(odd)]}
        t["user_attrs"]["seed"] = 3
        t["user_attrs"]["ratio"] = i  # ints, promoted to floats by the FAIL trial's gap
        if i % 3 == 0:
            t["user_attrs"]["flag"] = i == 0
        t["values"] = [[0.125, 0.25, math.inf, 0.125, 0.25, 3.0, 0.125, 0.5][i]]
        t["system_attrs"] = {"tag": "run/α" if i else "first"}
        trials.append(t)
    trials.insert(4, {"state": "FAIL", "values": [], "user_attrs": {"note": "never ran"},
                      "system_attrs": {"fail_reason": "bad \"config\"\n\ttab"},
                      "start": clock[0] + 1, "end": clock[0] + 1})
    make_case("edge_values", ["minimize"], trials)


def case_many_objectives():
    rng = random.Random(4)
    clock = [1650000000000]
    trials = []
    for i in range(5):
        t = mase_trial(rng, clock, 8, 0.5, ["a"])
        t["values"] = [rng.choice([0.0, 1.0, 2.0]) for _ in range(11)]
        trials.append(t)
    make_case("many_objectives", ["minimize", "maximize"] * 5 + ["minimize"], trials)


def case_empty():
    make_case("empty", ["maximize", "minimize"], [])


def case_all_failed():
    trials = [{"state": "FAIL", "values": [], "user_attrs": {},
               "system_attrs": {"fail_reason": f"reason {i}"},
               "start": 1000 * i, "end": 1000 * i + 5} for i in range(3)]
    make_case("all_failed", ["maximize", "minimize"], trials)


def doubles():
    rng = random.Random(5)
    values = [0.0, -0.0, 1.0, 0.5, 1 / 3, 2 / 3, 0.1 + 0.2, 1e-5, 1e-10, 5e-11, 1.5e-10, 2.5e-10,
              1e-11, 1e-15, 9.9e-16, 1e16, 1e16 - 2, 1.5e16, 1e300, 5e-324, 123456789.123456789,
              0.99999999995, 0.99999999994, 0.0625, 0.0005, 0.0015, 2.0005, -1e-11, -2.5]
    for _ in range(1000):
        values.append(rng.random() * 10 ** rng.randint(-17, 18) * rng.choice([1, -1]))
    for _ in range(500):  # halfway cases of the 10th decimal and of the 3rd
        values.append(rng.randrange(0, 10**12) / 2e10)
        values.append((rng.randrange(0, 10**6) + 0.5) / 1000)
    for _ in range(500):
        bits = rng.getrandbits(64)
        v = struct.unpack("<d", struct.pack("<Q", bits))[0]
        if math.isfinite(v):
            values.append(v)
    for _ in range(300):
        values.append(float(rng.randrange(-10**6, 10**6)))
    series = pd.Series(values, dtype="float64")
    encoded = json.loads(series.to_json(orient="values").replace("null", '"null"'),
                         parse_float=str, parse_int=str)
    assert len(encoded) == len(values)
    raw = series.to_json(orient="values")[1:-1].split(",")
    lines = [f"{v!r}\t{text}\t{round(v, 3)!r}" for v, text in zip(values, raw)]
    write("", "doubles.tsv", "\n".join(lines) + "\n")


def main():
    print(f"optuna {optuna.__version__}, pandas {pd.__version__}", file=sys.stderr)
    os.makedirs(OUT, exist_ok=True)
    case_mase_multi()
    case_single_sum()
    case_edge_values()
    case_many_objectives()
    case_empty()
    case_all_failed()
    doubles()


if __name__ == "__main__":
    main()
