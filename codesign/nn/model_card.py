"""The model card of a trained supernet: how it was made (command, seed, data, epochs per phase,
wall time, from the run's ``train_state.json``) and what it measures (test top-1 of the smallest,
the largest and a seeded sample of subnets at each bit-width, on the full test split, BN and
activation ranges recalibrated on held-out training images). Written as Markdown + JSON."""
from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from accelerators.errors import SpecError

from codesign.space.genome import DEFAULT_SPACE, subnet_key
from codesign.nn.quant_ranges import DEFAULT_BN, DEFAULT_CLIP

BITS = (4, 6, 8, 16)


def card_genomes(samples: int, seed: int = 0) -> list[tuple[str, dict]]:
    rng = np.random.default_rng(seed)
    out = [("largest", DEFAULT_SPACE.max_genome()), ("smallest", DEFAULT_SPACE.min_genome())]
    seen = {subnet_key(g) for _, g in out}
    while len(out) < samples + 2:
        g = DEFAULT_SPACE.canonical(DEFAULT_SPACE.sample(rng))
        if subnet_key(g) not in seen:
            seen.add(subnet_key(g))
            out.append((f"sample{len(out) - 1}", g))
    return out


def measure_card(weights, data, *, samples: int = 8, bits=BITS, seed: int = 0, test_images: int | None = None,
                 progress: bool = True, clip: str = DEFAULT_CLIP, bn: str = DEFAULT_BN) -> list[dict]:
    """One row per (subnet, bit-width): name, genome, bits, MACs, params, top-1 %."""
    import torch

    from codesign.nn.measure import measure
    from codesign.nn.supernet import load_supernet
    from codesign.artifacts import eval_split
    from codesign.space.layers import genome_macs
    net = load_supernet(weights)
    hold, test = eval_split(data)
    images, labels = test.images, test.labels
    if test_images:
        images, labels = images[:test_images], labels[:test_images]
    genomes = card_genomes(samples, seed)
    todo = [(name, g, b) for name, g in genomes for b in bits]
    it = todo
    if progress:
        from tqdm import tqdm
        it = tqdm(todo, desc="model card", unit="subnet")
    rows = []
    for name, g, b in it:
        params = sum(p.numel() for p in net.subnet(g).parameters())
        t = time.time()
        top1 = measure(net, g, b, hold.images, images, labels, seed=seed, clip=clip, bn=bn)
        rows.append({"name": name, "genome": g, "bits": int(b), "macs": int(genome_macs(g)), "params": int(params),
                     "top1": float(top1), "seconds": round(time.time() - t, 1)})
    del torch
    return rows


def _run_summary(run_dir: Path) -> dict:
    st = json.loads((run_dir / "train_state.json").read_text())
    phases: dict = {}
    for e in st.get("log", []):
        phases[e["phase"]] = phases.get(e["phase"], 0) + 1
    return {"run": str(run_dir), "config": st.get("config", {}), "epochs": phases,
            "wall_hours": round(st.get("seconds", 0.0) / 3600, 2),
            "final_log": st["log"][-1] if st.get("log") else {}}


def training_summary(run_dir) -> dict:
    """The run's own summary, plus ``lineage``: the runs it was warm-started from, oldest first
    (followed through each run's ``init_from`` while that file sits in a run directory with a
    ``train_state.json``), and ``total_wall_hours`` over all of them."""
    p = Path(run_dir) / "train_state.json"
    if not p.is_file():
        raise SpecError("--run", "no train_state.json (is training finished?)", str(p.parent))
    out = _run_summary(Path(run_dir))
    lineage, seen, cur = [], {Path(run_dir).resolve()}, out
    while cur["config"].get("init_from"):
        parent = Path(cur["config"]["init_from"]).parent
        if not (parent / "train_state.json").is_file() or parent.resolve() in seen:
            break
        seen.add(parent.resolve())
        cur = _run_summary(parent)
        lineage.insert(0, cur)
    out["lineage"] = lineage
    out["total_wall_hours"] = round(out["wall_hours"] + sum(r["wall_hours"] for r in lineage), 2)
    return out


_NON_DEFAULT = (("lr", 0.1), ("elastic_lr", 0.03), ("sandwich_random", 1), ("init_from", None))


def _command(cfg: dict) -> str:
    return (f"codesign train-supernet --data {cfg.get('data', 'DATA')} --out {cfg.get('out', 'OUT')} "
            f"--epochs {','.join(f'{k}={v}' for k, v in (cfg.get('epochs') or {}).items() if v)} "
            f"--batch-size {cfg.get('batch_size')} --seed {cfg.get('seed')} --threads {cfg.get('threads')}"
            + "".join(f" --{k.replace('_', '-')} {cfg[k]}" for k, d in _NON_DEFAULT if cfg.get(k, d) != d))


def write_card(rows: list[dict], summary: dict, out_md, *, weights, data, test_images: int,
               clip: str | None = None, bn: str | None = None) -> dict:
    out_md = Path(out_md)
    cfg = summary["config"]
    eps = ", ".join(f"{k} {v}" for k, v in summary["epochs"].items())
    lines = [
        "# Model card: OFA-MobileNetV3 supernet for CIFAR-10 (32x32)", "",
        "Made by this project's own command from the shared CIFAR-10 (train.zip / test.zip):", "",
        "```sh",
        *[_command(r["config"]) for r in summary.get("lineage", [])],
        _command(cfg),
        "```", "",
        f"- Seed {cfg.get('seed')}; {cfg.get('holdout')} training images held out (BN recalibration, predictor "
        "data); SGD + Nesterov, cosine per phase; distillation from the full network in the elastic phases"
        + ("; sandwich phase: largest subnet on the labels, smallest and random ones distilled from it "
           "in place (BigNAS)." if "sandwich" in summary["epochs"] else "."),
        *[f"- Run `{r['run']}`: epochs per phase {', '.join(f'{k} {v}' for k, v in r['epochs'].items())}; "
          f"wall time {r['wall_hours']} h." for r in summary.get("lineage", [])],
        f"- {'Last run' if summary.get('lineage') else 'Epochs per phase'}: "
        f"{'epochs per phase ' if summary.get('lineage') else ''}{eps}; wall time {summary['wall_hours']} h"
        + (f" ({summary['total_wall_hours']} h with the runs it started from)" if summary.get("lineage") else "")
        + " on this machine's CPU.",
        f"- Weights: `{Path(weights).name}` (state_dict; `torch.load(path, weights_only=True)`).",
        f"- Measured on {test_images} test images (the whole test split unless stated), BN statistics and "
        "activation ranges recalibrated on held-out training images; weights fake-quantized per channel, "
        "activations per tensor, to the bit-width"
        + (f" (ranges: {clip}, see `codesign/nn/quant.py`)" if clip else "")
        + ("; BN statistics then re-estimated on the quantized subnet (`codesign/nn/measure.py`)."
           if bn == "quantized" else "."), "",
        "| subnet | MACs (M) | params (M) | " + " | ".join(f"top-1 {b}-bit (%)" for b in BITS) + " |",
        "|---|---:|---:|" + "---:|" * len(BITS),
    ]
    by = {}
    for r in rows:
        by.setdefault(r["name"], {"macs": r["macs"], "params": r["params"], "genome": r["genome"]})[r["bits"]] = r["top1"]
    for name, d in by.items():
        lines.append(f"| {name} | {d['macs'] / 1e6:.1f} | {d['params'] / 1e6:.2f} | "
                     + " | ".join(f"{d[b]:.2f}" if b in d else "" for b in BITS) + " |")
    lines += ["", "Genomes:", ""] + [f"- {name}: `{json.dumps(d['genome'])}`" for name, d in by.items()]
    out_md.parent.mkdir(parents=True, exist_ok=True)
    out_md.write_text("\n".join(lines) + "\n")
    card = {"training": summary, "measurements": rows, "test_images": test_images, "data": str(data)}
    if clip:
        card["clip"] = clip
    if bn:
        card["bn"] = bn
    out_md.with_suffix(".json").write_text(json.dumps(card, indent=1))
    return card
