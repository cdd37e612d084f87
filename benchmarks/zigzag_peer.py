#!/usr/bin/env python3
"""Peer benchmark: how fast is ZigZag's analytical cost model?

Standalone on purpose: it must NOT import this project. Run it with the Python of a
scratch venv that holds ZigZag (see benchmarks/ZIGZAG.md):

    python3 -m venv /tmp/zigzag-venv && /tmp/zigzag-venv/bin/pip install zigzag-dse six
    /tmp/zigzag-venv/bin/python benchmarks/zigzag_peer.py costmodel --seconds 10
    /tmp/zigzag-venv/bin/python benchmarks/zigzag_peer.py network --workload resnet18

Modes
  costmodel  Single-mapping cost-model throughput. One ResNet-18-like conv layer
             (K=C=64, OX=OY=56, FX=FY=3, stride 1, pad 1, batch 1) on ZigZag's bundled
             tpu_like accelerator (32x32 MACs; W: rf_128B -> dram, O: rf_2B -> sram_2MB ->
             dram, I: sram_2MB -> dram). ZigZag's own front-end stages parse the inputs and
             fix the spatial mapping (D1: K32, D2: C32 from the bundled tpu_like mapping);
             LOMA (lpf_limit=6, ZigZag's default) then generates the temporal mappings
             (loop orderings + memory allocation) UNTIMED, and the timed loop only builds
             CostModelEvaluation objects (ZigZag evaluates in the constructor), cycling over
             those mappings until --seconds have passed.
  network    Wall time of ZigZag's complete mapping flow (get_hardware_performance_zigzag:
             ONNX parse, spatial-mapping generation, full LOMA search with default
             lpf_limit=6, cost model, and ZigZag's mandatory json/pickle/png result dumps,
             written to a temp dir) for the ResNet-18 ONNX bundled with ZigZag, tpu_like.

Only the `key: value` result lines go to stdout; ZigZag's logging and progress output go
to stderr (or are silenced). One core: BLAS/OpenMP threads = 1 and the process is pinned
to a single CPU.
"""

import os

# Single core: must be set before numpy (imported by ZigZag) is loaded.
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS",
             "NUMEXPR_NUM_THREADS", "VECLIB_MAXIMUM_THREADS"):
    os.environ[_var] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")  # ZigZag draws a png; never open a display

import argparse
import contextlib
import logging
import sys
import tempfile
import time
from importlib import metadata, resources
from itertools import islice

try:
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
except (AttributeError, OSError):
    pass  # not Linux: rely on the thread variables above

# Root handler on stderr at WARNING *before* ZigZag runs: its api calls
# logging.basicConfig(INFO), which is then a no-op, so INFO chatter is dropped.
logging.basicConfig(stream=sys.stderr, level=logging.WARNING)

try:
    import zigzag  # noqa: F401
    from zigzag.api import get_hardware_performance_zigzag
    from zigzag.cost_model.cost_model import CostModelEvaluation
    from zigzag.mapping.temporal_mapping import TemporalMappingType
    from zigzag.opt.loma.engine import LomaEngine
    from zigzag.stages.main import MainStage
    from zigzag.stages.mapping.spatial_mapping_generation import SpatialMappingGeneratorStage
    from zigzag.stages.parser.accelerator_parser import AcceleratorParserStage
    from zigzag.stages.parser.workload_parser import WorkloadParserStage
    from zigzag.stages.stage import Stage
    from zigzag.stages.workload_iterator import WorkloadStage
except ImportError as exc:
    sys.exit(f"zigzag_peer.py: cannot import ZigZag ({exc}).\n"
             "Run with the scratch venv's python after:\n"
             "  python3 -m venv /tmp/zigzag-venv && /tmp/zigzag-venv/bin/pip install zigzag-dse six")

INPUTS = resources.files("zigzag") / "inputs"  # inputs shipped inside the wheel
HARDWARE = str(INPUTS / "hardware" / "tpu_like.yaml")
MAPPING = str(INPUTS / "mapping" / "tpu_like.yaml")
LPF_LIMIT = 6  # ZigZag's default LOMA setting (the network run takes ~1 min, so kept)

# ResNet-18 layer1 3x3 conv, written exactly as ZigZag's ONNX Conv parser would emit it.
CONV_LAYER = {
    "id": 0, "name": "resnet18_layer1_conv3x3", "operator_type": "Conv",
    "equation": "O[b][g][k][oy][ox]+=W[g][k][c][fy][fx]*I[b][g][c][iy][ix]",
    "loop_dims": ["B", "K", "G", "OX", "OY", "C", "FX", "FY"],
    "loop_sizes": [1, 64, 1, 56, 56, 64, 3, 3],
    "dimension_relations": ["ix=1*ox+1*fx", "iy=1*oy+1*fy"],
    "operand_precision": {"W": 8, "I": 8, "O": 16, "O_final": 8},
    "operand_source": {"W": 0, "I": 0},
    "pr_loop_dims": ["IX", "IY"], "pr_loop_sizes": [56, 56], "padding": [[1, 1], [1, 1]],
}


@contextlib.contextmanager
def quiet_in_tempdir():
    """cwd = fresh temp dir (ZigZag writes files) and stdout -> stderr while ZigZag runs."""
    old = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="zigzag_peer_") as tmp:
        os.chdir(tmp)
        try:
            with contextlib.redirect_stdout(sys.stderr):
                yield tmp
        finally:
            os.chdir(old)


class _Capture(Stage):
    """Leaf stage that records the kwargs ZigZag's front-end hands to the temporal mapper
    (accelerator, parsed layer, spatial mapping + its integer twin) and yields nothing."""
    captured: list = []

    def __init__(self, list_of_callables, **kwargs):
        super().__init__(list_of_callables, **kwargs)
        _Capture.captured.append(kwargs)

    def run(self):
        return iter(())

    def is_leaf(self):
        return True


def costmodel(seconds: float, max_mappings: int) -> None:
    with quiet_in_tempdir():
        # Same front-end as get_hardware_performance_zigzag, stopped before the temporal mapper.
        MainStage([WorkloadParserStage, AcceleratorParserStage, WorkloadStage,
                   SpatialMappingGeneratorStage, _Capture],
                  workload=[CONV_LAYER], accelerator=HARDWARE, mapping=MAPPING,
                  nb_mappings_generated=1, temporal_mapping_type=TemporalMappingType.UNEVEN).run()
        kw = _Capture.captured[0]
        args = dict(accelerator=kw["accelerator"], layer=kw["layer"],
                    spatial_mapping=kw["spatial_mapping"], spatial_mapping_int=kw["spatial_mapping_int"],
                    access_same_data_considered_as_no_access=True)  # as the api sets it

        # Untimed: LOMA enumerates loop orderings and allocates each to the memories.
        t = time.perf_counter()
        engine = LomaEngine(accelerator=args["accelerator"], layer=args["layer"],
                            spatial_mapping=args["spatial_mapping"],
                            mapping_type=TemporalMappingType.UNEVEN, loma_lpf_limit=LPF_LIMIT)
        tms = list(islice(engine.run(), max_mappings))
        gen_s = time.perf_counter() - t

        # Timed: one CostModelEvaluation per mapping (evaluation happens in __init__), cycling
        # over the LOMA mappings. Each CME is a fresh object, so ZigZag's per-instance caches
        # do not carry over between evaluations.
        n, best, t0 = 0, float("inf"), time.perf_counter()
        while True:
            cme = CostModelEvaluation(temporal_mapping=tms[n % len(tms)], **args)
            best = min(best, cme.latency_total2)
            n += 1
            elapsed = time.perf_counter() - t0
            if elapsed >= seconds:
                break

    print(f"[info] {len(tms)} LOMA mappings generated in {gen_s:.2f}s (untimed); "
          f"best latency {best:.0f} cycles", file=sys.stderr)
    layer = ", ".join(f"{d}={s}" for d, s in zip(CONV_LAYER["loop_dims"], CONV_LAYER["loop_sizes"]))
    print(f"zigzag_version: {metadata.version('zigzag-dse')}")
    print(f"zigzag_layer: Conv {layer}, stride 1, pad 1 on tpu_like.yaml "
          f"(SM D1:K32 D2:C32, LOMA lpf_limit={LPF_LIMIT})")
    print(f"zigzag_evals: {n}")
    print(f"zigzag_seconds: {elapsed:.3f}")
    print(f"zigzag_evals_per_s: {n / elapsed:.1f}")


def network(workload: str) -> None:
    onnx = INPUTS / "workload" / f"{workload}.onnx"
    if not onnx.is_file():
        sys.exit(f"zigzag_peer.py: no bundled workload {onnx}")
    with quiet_in_tempdir() as tmp:
        t = time.perf_counter()
        energy, latency, _ = get_hardware_performance_zigzag(
            str(onnx), HARDWARE, MAPPING, opt="latency", dump_folder=os.path.join(tmp, "out"),
            lpf_limit=LPF_LIMIT, loma_show_progress_bar=False)
        seconds = time.perf_counter() - t
    print(f"zigzag_network_seconds: {seconds:.2f}")
    print(f"zigzag_network_energy_pj: {energy:.1f}")
    print(f"zigzag_network_latency_cycles: {latency:.0f}")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = ap.add_subparsers(dest="mode", required=True)
    cm = sub.add_parser("costmodel", help="single-mapping cost-model evaluations per second")
    cm.add_argument("--seconds", type=float, default=10.0, help="timed duration (default 10)")
    cm.add_argument("--max-mappings", type=int, default=2000,
                    help="LOMA mappings to pre-generate and cycle over (default 2000)")
    nw = sub.add_parser("network", help="full ZigZag mapping flow on a bundled network")
    nw.add_argument("--workload", default="resnet18", help="bundled ONNX name (default resnet18)")
    a = ap.parse_args()
    costmodel(a.seconds, a.max_mappings) if a.mode == "costmodel" else network(a.workload)


if __name__ == "__main__":
    main()
