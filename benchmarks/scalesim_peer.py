#!/usr/bin/env python3
"""Peer check: our weight-stationary systolic template against SCALE-Sim, layer by layer.

    python3 -m venv /tmp/scalesim-venv && /tmp/scalesim-venv/bin/pip install scalesim 'numpy<2.3'
    python3 benchmarks/scalesim_peer.py                       # all 8 layers, ~3 min on 2 cores
    python3 benchmarks/scalesim_peer.py --layers resnet18_conv4_x,alexnet_conv3

Run it with the project's Python. It runs SCALE-Sim (cycle-level, ``scalesim`` 3.0.0 on PyPI) in
a subprocess with the scratch venv's Python (``--scalesim-python``): this same file, in its
``--peer`` role, which imports only the standard library and ``scalesim``, never this project.
SCALE-Sim 3.0.0 needs numpy < 2.3 (with 2.3 and later ``int()`` of a one-element array raises in
``double_buffered_scratchpad.service_memory_requests``). Without that Python the script says how
to create it, in one line, and exits 2.

Layers (batch 1): AlexNet conv1-conv5 (Krizhevsky et al.: 96/256/384/384/256 filters, output
55/27/13/13/13) and ResNet-18 conv1 (7x7/2, 3 -> 64, output 112), a conv2_x 3x3 (64 -> 64,
output 56) and a conv4_x 3x3 (256 -> 256, output 14). SCALE-Sim has no padding and takes
``ofmap = ceil((ifmap - filter + stride) / stride)``; each layer's IFMAP is given as the padded
extent ``(out - 1) * stride + filter`` so both sides compute the network's output size. (The
topology files shipped with SCALE-Sim give the unpadded sizes, e.g. AlexNet Conv2 27x27, which
shrinks its output to 23x23.)

SCALE-Sim side: SCALE-Sim's default config (``configs/scale.cfg`` of its repository: 32x32 array,
IFMAP / filter / OFMAP SRAM 64 KiB each, double-buffered, bandwidth mode CALC) with ``Dataflow:
ws``, read by its own ``scale_config.read_conf_file``; the topology CSV read by
``topologies.load_arrays``; each layer run by ``single_layer_sim`` as its ``simulator.run`` does
(compute demand matrices, then the memory simulation), without writing traces. Reported per
layer: its "Total Cycles" (compute + stall cycles; CALC sizes the DRAM bandwidth so that nothing
stalls) and its "Overall Util %" (MACs / (cycles x 1024)).

Our side: the tpu_like template (``specs/accelerators/tpu_like.yaml``: 32x32 MACs, 8-bit
operands, 32-bit accumulation, one weight per PE kept in ``WeightRegs``), with
 * its DRAM bandwidth limit (0.76 words/cycle) dropped: SCALE-Sim's CALC mode assumes the DRAM
   keeps up, so both sides count compute cycles;
 * its Unified Buffer and Accumulators replaced by SCALE-Sim's three default SRAMs, each 64 KiB,
   double-buffered (``multiple_buffering: 2``), keeping Inputs / Weights / Outputs. With no
   bandwidth limit the capacities only decide which level may keep which tile (the mapper may
   bypass a level), not the cycles.
The mapping is our mapper's best-cycles mapping under constraints that reproduce SCALE-Sim's ws
dataflow (``systolic_compute_ws``): the reduction C, R, S on meshX (SCALE-Sim's rows, ``Sr =
C*R*S``), the filters K on meshY (its columns, ``Sc = K``), weights stationary in the PEs (no
weight loop inside ``WeightRegs``), and all output-pixel loops (N, P, Q) inside ``WeightRegs``,
so that each weight tile streams all ``T = P*Q`` pixels, as each SCALE-Sim fold does. The
fill/drain column adds ``accelerators.systolic.fill_drain_cycles`` (``folds * (2*rows + cols -
2)``, derived from SCALE-Sim's ws demand matrices; see that module).

Not matched: SCALE-Sim's memory system (read/write buffers, request queues, DRAM traces) has no
counterpart in our model and plays no part here (no stalls in CALC mode); energy is not compared
(the scalesim 3.0.0 package computes none; the Accelergy coupling lives in SCALE-Sim's repository); SCALE-Sim counts the last cycle's 0-based
index, one less than the count (a difference of 1 cycle per layer).

Where we differ by more than 10% (the table of the last run is in README.md, "Systolic array
timing against SCALE-Sim"):
 * Fill and drain (every layer; more than 10% in all but ResNet-18 conv2_x), default model:
   SCALE-Sim's ws array spends ``2*rows + cols - 2 = 94`` cycles per fold loading the weights
   and filling and draining the pipeline, which our model (Timeloop's semantics: the cycles in
   which the MACs compute) does not count. Ours / SCALE-Sim is then ``T / (T + 94)``: 0.97 for
   ResNet-18 conv2_x (T = 3,136), 0.89 for AlexNet conv2 (T = 729), 0.64-0.68 for the 13x13
   and 14x14 layers (T = 169, 196). With the fill/drain term the six layers whose folds match
   agree to the one cycle of SCALE-Sim's 0-based count.
 * AlexNet conv1 and ResNet-18 conv1, with or without the term: SCALE-Sim flattens C*R*S (363
   and 147) onto the 32 rows and pads the last fold (12 and 5 row folds, 92% and 91%
   utilization); our model, like Timeloop, only splits each dimension into exact factors (no
   imperfect factorization), and the largest product of factors of C=3, R=S=11 (C=3, R=S=7)
   that fits 32 rows is 11 (21): 33 (7) row folds. Ours takes 2.67x (1.39x) SCALE-Sim's
   cycles, 2.75x (1.40x) with the term: the ratio of the weight folds, 99/36 (14/10).

The last two lines are ``scalesim_cycle_ratio_median`` (median over the layers of our cycles /
SCALE-Sim's, default model) and ``scalesim_cycle_ratio_median_filldrain`` (with the fill/drain
term).
"""
from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from statistics import median

HERE = Path(__file__).resolve().parent
DEFAULT_PYTHON = "/tmp/scalesim-venv/bin/python"
VENV_HINT = ("python3 -m venv /tmp/scalesim-venv && "
             "/tmp/scalesim-venv/bin/pip install scalesim 'numpy<2.3'")

ARRAY = 32          # rows = cols, SCALE-Sim's default and our tpu_like template
SRAM_KIB = 64       # SCALE-Sim's configs/scale.cfg: IfmapSramSzkB = FilterSramSzkB = OfmapSramSzkB

# name, output height = width (P = Q), filter height = width (R = S), channels C, filters K, stride
LAYERS = [
    ("alexnet_conv1", 55, 11, 3, 96, 4),
    ("alexnet_conv2", 27, 5, 96, 256, 1),
    ("alexnet_conv3", 13, 3, 256, 384, 1),
    ("alexnet_conv4", 13, 3, 384, 384, 1),
    ("alexnet_conv5", 13, 3, 384, 256, 1),
    ("resnet18_conv1", 112, 7, 3, 64, 2),
    ("resnet18_conv2_x", 56, 3, 64, 64, 1),
    ("resnet18_conv4_x", 14, 3, 256, 256, 1),
]

# SCALE-Sim's default configs/scale.cfg with the weight-stationary dataflow; every key its
# scale_config.read_conf_file reads.
SCALESIM_CFG = f"""[general]
run_name = scalesim_peer

[architecture_presets]
ArrayHeight: {ARRAY}
ArrayWidth: {ARRAY}
IfmapSramSzkB: {SRAM_KIB}
FilterSramSzkB: {SRAM_KIB}
OfmapSramSzkB: {SRAM_KIB}
IfmapOffset: 0
FilterOffset: 10000000
OfmapOffset: 20000000
Bandwidth: 10
Dataflow: ws
MemoryBanks: 1
ReadRequestBuffer: 32
WriteRequestBuffer: 32

[layout]
IfmapCustomLayout: False
IfmapSRAMBankBandwidth: 100
IfmapSRAMBankNum: 10
IfmapSRAMBankPort: 2
FilterCustomLayout: False
FilterSRAMBankBandwidth: 100
FilterSRAMBankNum: 10
FilterSRAMBankPort: 2

[sparsity]
SparsitySupport: false
SparseRep: ellpack_block
OptimizedMapping: false
BlockSize: 8
RandomNumberGeneratorSeed: 40

[run_presets]
InterfaceBandwidth: CALC
UseRamulatorTrace: False
"""


# ============================================================================ SCALE-Sim side
# Runs in the scratch venv: standard library and scalesim only.

def _peer_layer(job: tuple) -> dict:
    """One layer through SCALE-Sim's single_layer_sim, as its simulator.run does (no traces)."""
    cfg_path, topo_path, layer_id = job
    with contextlib.redirect_stdout(sys.stderr):           # stdout carries only the JSON answer
        from scalesim.layout_utils import layouts
        from scalesim.scale_config import scale_config
        from scalesim.single_layer_sim import single_layer_sim
        from scalesim.topology_utils import topologies
        config = scale_config()
        config.read_conf_file(cfg_path)
        topo = topologies()
        topo.load_arrays(topofile=topo_path)
        sim = single_layer_sim()
        sim.set_params(layer_id=layer_id, config_obj=config, topology_obj=topo,
                       layout_obj=layouts(), verbose=False)
        sim.run()
        _, cycles, stalls, util_pct, _, _ = sim.get_compute_report_items()
        ws = sim.compute_system
        return {"cycles": int(cycles), "stall_cycles": int(stalls), "utilization": util_pct / 100,
                "folds": int(ws.row_fold_demand_matrices * ws.col_fold), "T": int(ws.T),
                "macs": int(sim.num_compute)}


def peer_main(layers_json: str, jobs: int) -> int:
    from concurrent.futures import ProcessPoolExecutor
    try:
        import numpy
        import scalesim  # noqa: F401
    except ImportError as e:
        print(f"scalesim_peer.py: cannot import SCALE-Sim in {sys.executable} ({e}); create the "
              f"venv with: {VENV_HINT}", file=sys.stderr)
        return 2
    if tuple(int(x) for x in numpy.__version__.split(".")[:2]) >= (2, 3):
        print(f"scalesim_peer.py: SCALE-Sim 3.0.0 needs numpy<2.3, {sys.executable} has "
              f"{numpy.__version__}; run: {Path(sys.executable).parent}/pip install 'numpy<2.3'",
              file=sys.stderr)
        return 2
    layers = json.loads(layers_json)
    with tempfile.TemporaryDirectory(prefix="scalesim_peer_") as tmp:
        cfg = Path(tmp) / "scale.cfg"
        cfg.write_text(SCALESIM_CFG)
        topo = Path(tmp) / "topology.csv"
        rows = ["Layer name, IFMAP Height, IFMAP Width, Filter Height, Filter Width, Channels, "
                "Num Filter, Strides,"]
        rows += [f"{l['name']}, {l['ifmap']}, {l['ifmap']}, {l['filt']}, {l['filt']}, {l['C']}, "
                 f"{l['K']}, {l['stride']}," for l in layers]
        topo.write_text("\n".join(rows) + "\n")
        jobs_ = [(str(cfg), str(topo), i) for i in range(len(layers))]
        with ProcessPoolExecutor(max(1, min(jobs, len(layers)))) as ex:
            results = list(ex.map(_peer_layer, jobs_))
    print(json.dumps(results))
    return 0


# ============================================================================ our side
# Runs with the project's Python.

def scalesim_like_arch():
    """tpu_like with SCALE-Sim's default SRAMs and no DRAM bandwidth limit (see the docstring)."""
    from accelerators.spec import build_architecture, template_path
    from accelerators.timeloop import load_yaml
    spec = load_yaml(template_path("tpu_like"))
    dram = {k: v for k, v in spec["levels"][0].items() if k != "bandwidth"}
    pe = [lv for lv in spec["levels"] if lv.get("scope") == "pe"]
    srams = [{"name": name, "kind": "sram", "size_kib": SRAM_KIB, "multiple_buffering": 2,
              "width_bits": width, "scope": "chip", "keeps": [space]}
             for name, space, width in (("IfmapSRAM", "Inputs", 256), ("FilterSRAM", "Weights", 256),
                                        ("OfmapSRAM", "Outputs", 1024))]
    spec = dict(spec, name="tpu_like_scalesim", pe_array={"x": ARRAY, "y": ARRAY},
                levels=[dram, *srams, *pe])
    return build_architecture(spec)


def scalesim_ws_constraints(arch, work):
    """Our weight-stationary constraints (C, R, S on meshX, K on meshY, no weight loop inside the
    PEs) plus SCALE-Sim's fold order: every output-pixel loop inside the PEs, under a stationary
    weight, i.e. temporal factor 1 for them at every level above."""
    from accelerators.constraints import Constraints, LevelConstraint, dataflow_constraints
    weight_dims = set().union(*[ds.dims() for ds in work.dataspaces if ds.role == "weights"])
    stream = tuple((d, 1) for d in work.dims if d not in weight_dims)
    order = Constraints(tuple((lv.name, LevelConstraint(temporal_factors=stream))
                              for lv in arch.levels[:-1]), "scalesim-ws")
    return dataflow_constraints(arch, work, "weight-stationary").merge(order)


def ours(arch, name, out, filt, C, K, stride, budget: int) -> dict:
    from accelerators.mapper import map_layer
    from accelerators.systolic import cycles_with_fill_drain, weight_folds
    from accelerators.workload import conv2d
    work = conv2d(name, K=K, C=C, P=out, Q=out, R=filt, S=filt, stride=stride)
    res = map_layer(arch, work, scalesim_ws_constraints(arch, work), objective="cycles",
                    budget=budget, seed=0)
    ev = res.evaluation
    fd = cycles_with_fill_drain(ev, arch, work, res.mapping)
    return {"cycles": ev.cycles, "utilization": ev.utilization, "cycles_fd": fd, "macs": work.macs,
            "folds": weight_folds(arch, work, res.mapping)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--scalesim-python", default=DEFAULT_PYTHON,
                    help=f"Python of the venv that holds scalesim (default {DEFAULT_PYTHON})")
    ap.add_argument("--layers", default="", help="comma-separated subset of: "
                    + ", ".join(l[0] for l in LAYERS))
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 1,
                    help="SCALE-Sim processes, one layer each (default: the CPU count)")
    ap.add_argument("--budget", type=int, default=6000, help="mapper evaluations per layer")
    ap.add_argument("--peer", metavar="LAYERS_JSON", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.peer is not None:
        return peer_main(args.peer, args.jobs)

    py = Path(args.scalesim_python)
    if not py.exists():
        print(f"scalesim_peer.py: no SCALE-Sim Python at {py}; create it with: {VENV_HINT}",
              file=sys.stderr)
        return 2
    wanted = [w for w in args.layers.split(",") if w]
    unknown = sorted(set(wanted) - {l[0] for l in LAYERS})
    if unknown:
        print(f"scalesim_peer.py: unknown layer(s) {', '.join(unknown)}", file=sys.stderr)
        return 2
    layers = [l for l in LAYERS if not wanted or l[0] in wanted]
    peer_in = json.dumps([{"name": n, "ifmap": (o - 1) * s + f, "filt": f, "C": C, "K": K, "stride": s}
                          for n, o, f, C, K, s in layers])

    sys.path.insert(0, str(HERE.parent))
    with tempfile.TemporaryFile(mode="w+") as err:
        # SCALE-Sim runs in the background while our mapper maps the same layers
        proc = subprocess.Popen([str(py), str(Path(__file__).resolve()), "--peer", peer_in,
                                 "--jobs", str(args.jobs)], stdout=subprocess.PIPE, stderr=err,
                                text=True)
        try:
            arch = scalesim_like_arch()
            mine = [ours(arch, *l, budget=args.budget) for l in layers]
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        out, _ = proc.communicate()
        err.seek(0)
        err_lines = err.read().strip().splitlines()
    if proc.returncode != 0:
        print(err_lines[-1] if err_lines else f"scalesim_peer.py: SCALE-Sim exited {proc.returncode}",
              file=sys.stderr)
        return 2
    theirs = json.loads(out)

    print(f"# {arch.name}: {ARRAY}x{ARRAY} weight-stationary array, SRAMs {SRAM_KIB} KiB each, "
          f"no DRAM bandwidth limit; SCALE-Sim {ARRAY}x{ARRAY} ws, default config, CALC")
    print("| layer | ours cycles | SCALE-Sim cycles | ours / SCALE-Sim | ours util | SCALE-Sim util "
          "| ours + fill/drain | (ours + fill/drain) / SCALE-Sim | weight folds ours / SCALE-Sim |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    ratios, ratios_fd = [], []
    for (name, *_), o, t in zip(layers, mine, theirs):
        assert o["macs"] == t["macs"], (name, o["macs"], t["macs"])   # the same layer on both sides
        r, r_fd = o["cycles"] / t["cycles"], o["cycles_fd"] / t["cycles"]
        ratios.append(r)
        ratios_fd.append(r_fd)
        print(f"| {name} | {o['cycles']:,} | {t['cycles']:,} | {r:.3f} | {100 * o['utilization']:.1f}% "
              f"| {100 * t['utilization']:.1f}% | {o['cycles_fd']:,} | {r_fd:.3f} "
              f"| {o['folds']} / {t['folds']} |")
    stalls = sum(t["stall_cycles"] for t in theirs)
    print(f"# SCALE-Sim stall cycles, all layers: {stalls}")
    print(f"scalesim_cycle_ratio_median: {median(ratios):.4f}")
    print(f"scalesim_cycle_ratio_median_filldrain: {median(ratios_fd):.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
