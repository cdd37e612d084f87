"""Re-measure a search run's front on the supernet (validation split: 2,500 held-out training
images, codesign.artifacts.predictor_split; measure() defaults) and its hypervolume on measured
accuracy. Resumable: OUT.jsonl gets one line per (design id) as it finishes.

    python3 experiments/zero_shot_search/remeasure.py RUN_DIR OUT.jsonl [--minutes M]
    python3 experiments/zero_shot_search/remeasure.py --hv RUN_DIR OUT.jsonl
"""
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))


def front(run):
    return list(csv.DictReader(open(Path(run) / "front.csv")))


def measure_front(run, out, minutes=None):
    import torch
    torch.set_num_threads(1)
    from codesign.artifacts import predictor_split
    from codesign.nn.measure import measure
    from codesign.nn.supernet import load_supernet
    stop = time.time() + 60 * minutes if minutes else None
    done = {json.loads(l)["id"] for l in open(out)} if Path(out).exists() else set()
    net = load_supernet(Path(__file__).resolve().parents[2] / "codesign" / "weights" / "supernet.pt")
    calib, hold = predictor_split("/work/shared/data/cifar10", 5000, 2000, 2500, seed=0)
    with open(out, "a") as fh:
        for r in front(run):
            if r["id"] in done:
                continue
            if stop and time.time() > stop:
                break
            g = json.loads(r["genome_json"])["net"] if "net" in json.loads(r["genome_json"]) else json.loads(r["genome_json"])
            t = time.time()
            top1 = measure(net, g, int(r["hw_bits"]), calib, hold.images, hold.labels)
            fh.write(json.dumps({"id": r["id"], "bits": int(r["hw_bits"]), "search_top1": float(r["top1_pct"]),
                                 "measured_top1": top1, "seconds": round(time.time() - t, 1)}) + "\n")
            fh.flush()


def hv(run, out):
    from codesign.search.nsga2 import hypervolume
    from codesign.space.joint import space_from_dict
    cfg = json.load(open(Path(run) / "config.json"))
    objectives = cfg["objectives"]
    space = space_from_dict(cfg["evaluator"]["space"], cfg["evaluator"].get("space_name", "space"))
    ref = space.reference_point(objectives)
    m = {json.loads(l)["id"]: json.loads(l)["measured_top1"] for l in open(out)}
    rows = [r for r in front(run) if r["id"] in m and float(r["violation"]) <= 0]
    col = {"accuracy": lambda r: -m[r["id"]], "latency": lambda r: float(r["latency_ms"]),
           "energy": lambda r: float(r["energy_uj"]), "edp": lambda r: float(r["edp_uj_ms"]),
           "area": lambda r: float(r["area_mm2"])}
    F = np.array([[col[o](r) for o in objectives] for r in rows], float)
    return {"front": len(front(run)), "measured": len(m), "hv_measured": hypervolume(F, np.asarray(ref)),
            "mean_measured_top1": float(np.mean(list(m.values()))) if m else None}


if __name__ == "__main__":
    if sys.argv[1] == "--hv":
        print(json.dumps(hv(sys.argv[2], sys.argv[3])))
    else:
        measure_front(sys.argv[1], sys.argv[2], float(sys.argv[4]) if len(sys.argv) > 4 else None)
