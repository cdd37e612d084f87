"""A catalogue of bad input for every ``codesign`` subcommand: realistic mistakes and hostile
files (issue #19). Each case asserts exit status 2, at most 3 lines of output, no traceback and
no side effect: a hostile file's marker stays absent, and a run directory is unchanged byte for
byte after a refused ``--resume``.

Hostile files (pickles that would run code, YAML alias bombs, decompression bombs, broken
checkpoints, data sets) run the command line in a subprocess; the plain mistakes (out-of-range
numbers, wrong types, missing files) call ``codesign.cli.main`` in this process (the same code
path, faster)."""
from __future__ import annotations

import importlib.util
import json
import os
import pickle
import re
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from codesign.cli import main
from conftest import TIMELOOP_REF, need_timeloop_reference

REPO = Path(__file__).resolve().parents[1]
SPECS = REPO / "specs"
COMMANDS = ("evaluate", "map", "evaluate-network", "train-supernet", "accuracy", "accuracy-data", "train-predictor",
            "proxies", "search", "model-card", "sweep", "export", "plot", "report", "verify", "cost-data",
            "train-cost-predictor", "templates", "darts", "add-measured", "audit-screening")


# ----------------------------------------------------------------------------- hostile files

class _Evil:
    """Unpickling this runs ``touch MARKER`` (what a crafted data file or checkpoint would do)."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _bomb_yaml(levels: int = 9, width: int = 9) -> str:
    """The "billion laughs": 9 anchors, each a list of 9 aliases of the previous one."""
    lines = [f"  - &a0 [{', '.join(['lol'] * width)}]"]
    for i in range(1, levels):
        lines.append(f"  - &a{i} [{', '.join([f'*a{i - 1}'] * width)}]")
    return "\n".join(lines) + "\n"


def _png(path: Path, size=(8, 8), mode="RGB"):
    from PIL import Image
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size).save(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    t = tmp_path_factory.mktemp("bad")
    f = {"dir": t, "marker": t / "PWNED"}
    evil = pickle.dumps(_Evil(f["marker"]), protocol=2)
    f["evil_pickle"] = t / "evil.pt"
    f["evil_pickle"].write_bytes(evil)
    try:
        import torch
        f["evil_torch"] = t / "evil_zip.pt"
        torch.save({"w": _Evil(f["marker"])}, f["evil_torch"])
        f["wrong_state"] = t / "wrong_state.pt"
        torch.save({"not_a_layer": torch.zeros(2)}, f["wrong_state"])
    except ImportError:
        f["evil_torch"] = f["wrong_state"] = f["evil_pickle"]
    f["garbage"] = t / "garbage.pt"
    f["garbage"].write_bytes(b"\x80\x04this is not a checkpoint" * 10)
    f["empty"] = t / "empty.pt"
    f["empty"].write_bytes(b"")
    # data sets
    cifar = t / "cifar_evil" / "cifar-10-batches-py"
    cifar.mkdir(parents=True)
    for name in ["batches.meta", "test_batch"] + [f"data_batch_{i}" for i in range(1, 6)]:
        (cifar / name).write_bytes(evil)
    f["cifar_evil"] = t / "cifar_evil"
    notzip = t / "notzip"
    notzip.mkdir()
    (notzip / "train.zip").write_text("this is not a zip\n")
    (notzip / "test.zip").write_text("this is not a zip\n")
    f["notzip"] = notzip
    small = t / "small"                     # 2 classes x 5 images per split: smaller than any command needs
    for split in ("train", "test"):
        for c in ("cat", "dog"):
            for i in range(5):
                _png(small / split / c / f"{i}.png")
    f["small"] = small
    corrupt = t / "corrupt"
    for split in ("train", "test"):
        for c in ("cat", "dog"):
            _png(corrupt / split / c / "ok.png")
            (corrupt / split / c / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40)
    f["corrupt"] = corrupt
    bomb = t / "bomb"
    for split in ("train", "test"):
        for c in ("cat", "dog"):
            _png(bomb / split / c / "ok.png")
    _png(bomb / "test" / "cat" / "bomb.png", size=(14000, 14000), mode="1")     # tiny file, 196 Mpixel
    shutil.copy(bomb / "test" / "cat" / "bomb.png", bomb / "train" / "cat" / "bomb.png")
    f["bomb"] = bomb
    # YAML
    space = (SPECS / "spaces" / "default.yaml").read_text()
    f["space_bomb"] = t / "space_bomb.yaml"
    f["space_bomb"].write_text(space.replace("description: OFA-MobileNetV3 (CIFAR-10) x Eyeriss-like accelerators",
                                             "description:\n" + _bomb_yaml()))
    f["space_nosupernet"] = t / "space_nosupernet.yaml"
    f["space_nosupernet"].write_text(space.replace("network: {supernet: default}", "network: {supernet: resnet1000}"))
    f["space_typo"] = t / "space_typo.yaml"
    f["space_typo"].write_text(space.replace("constraints:", "constraint:"))
    sweep = (SPECS / "sweeps" / "smoke.yaml").read_text().replace("../workloads/", str(SPECS / "workloads") + "/")
    f["sweep"] = t / "sweep.yaml"
    f["sweep"].write_text(sweep)
    f["sweep_bomb"] = t / "sweep_bomb.yaml"
    f["sweep_bomb"].write_text(sweep.replace("description: smoke test, ResNet-18 conv2_x on Eyeriss-like, PE array x bits",
                                             "description:\n" + _bomb_yaml()))
    f["sweep_typo"] = t / "sweep_typo.yaml"
    f["sweep_typo"].write_text(sweep.replace("mapper: {budget: 200", "mapper: {budgt: 200"))
    f["space_bw0"] = t / "space_bw0.yaml"
    f["space_bw0"].write_text(space.replace("dram_bw: {choices: [2, 4, 8, 16]}", "dram_bw: {choices: [0, 4]}"))
    f["space_ref"] = t / "space_ref.yaml"
    f["space_ref"].write_text(space.replace("latency: 10,", "latency: -10,"))
    f["space_axis"] = t / "space_axis.yaml"
    f["space_axis"].write_text(space.replace("pe_x: {min: 4, max: 16, step: 2}", "pe_x: {min: 4, max: 1e12, step: 1}"))
    f["sweep_axis"] = t / "sweep_axis.yaml"
    f["sweep_axis"].write_text(sweep.replace("pe_x: [8, 14]", "pe_x: {min: 1, max: 1000000000}"))
    f["sweep_grid"] = t / "sweep_grid.yaml"
    f["sweep_grid"].write_text(sweep.replace("pe_x: [8, 14]", "pe_x: {min: 1, max: 400}")
                               .replace("pe_y: 12", "pe_y: {min: 1, max: 400}"))
    f["sweep_random_n"] = t / "sweep_random_n.yaml"
    f["sweep_random_n"].write_text(sweep.replace("mode: grid", "mode: random\nn: 100000000"))
    f["many_aliases"] = t / "many_aliases.yaml"
    f["many_aliases"].write_text("a: &x 1\nb: [" + ", ".join(["*x"] * 500) + "]\n")
    f["deep"] = t / "deep.yaml"
    f["deep"].write_text("a: " + "[" * 5000 + "]" * 5000 + "\n")
    f["binary_yaml"] = t / "binary.yaml"
    f["binary_yaml"].write_bytes(bytes(range(256)) * 4)
    f["layer"] = t / "layer.yaml"
    f["layer"].write_text("architecture: tpu_like\nworkload: {type: conv2d, K: 16, C: 8, P: 7, Q: 7, R: 3, S: 3}\n")
    for name, text in (("layers_empty", "layers: []\n"),
                       ("layers_neg", "layers:\n  - {type: conv2d, name: a, C: 8, K: 8, P: 7, Q: 7, R: 3, S: 3, repeat: -1}\n"),
                       ("layers_huge", "layers:\n  - {type: conv2d, name: a, C: 8, K: 8, P: 7, Q: 7, R: 3, S: 3, repeat: 1000000000}\n"),
                       ("layers_str", "layers:\n  - {type: conv2d, name: a, C: 8, K: 8, P: 7, Q: 7, R: 3, S: 3, repeat: '3'}\n"),
                       ("layers_notlist", "layers: 5\n"),
                       ("layers_typo", "layerz: []\nlayers:\n  - {type: conv2d, name: a, C: 8, K: 8, P: 7, Q: 7, R: 3, S: 3}\n"),
                       ("layers_bits0", "layers:\n  - {type: matmul, name: a, M: 8, N: 3, K: 4, bits: {Outputs: 0}}\n"),
                       ("layers_bitsfrac", "layers:\n  - {type: matmul, name: a, M: 8, N: 3, K: 4, bits: {Inputs: 3.5}}\n"),
                       ("layers_bitsspace", "layers:\n  - {type: matmul, name: a, M: 8, N: 3, K: 4, bits: {Psums: 8}}\n"),
                       ("layers_bitsscalar", "layers:\n  - {type: matmul, name: a, M: 8, N: 3, K: 4, bits: 8}\n"),
                       ("layers_bomb", "layers:\n" + _bomb_yaml())):
        f[name] = t / f"{name}.yaml"
        f[name].write_text(text)
    # JSONL data sets
    f["rows_nogenome"] = t / "nogenome.jsonl"
    f["rows_nogenome"].write_text("".join(json.dumps({"bits": 16, "top1": 80.0 + i}) + "\n" for i in range(5)))
    f["rows_broken"] = t / "broken.jsonl"
    f["rows_broken"].write_text('{"genome": {"ks": [3]}, "bits": 16, "top1": 80}\n{"genome": \n{"bits": 4}\n')
    f["rows_ok"] = REPO / "codesign" / "weights" / "accuracy_data.jsonl"
    first = f["rows_ok"].read_text().splitlines()[:20]
    f["rows_bits5"] = t / "bits5.jsonl"
    f["rows_bits5"].write_text("\n".join(first[:1] + [first[1].replace('"bits": 6', '"bits": 5')] + first[2:]) + "\n")
    # search runs as codesign verify leaves them (add-measured): one verified, one never measured
    from codesign.rundir.store import genome_key, open_run
    from codesign.space.genome import DEFAULT_SPACE
    protocol = {"split": "validation", "images": None, "holdout": 5000, "seed": 0, "weights_sha256": "ab" * 32}
    for name, verified in (("run_verified", True), ("run_unverified", False)):
        d = t / name
        store = open_run(d, create=True)
        genome = {"net": DEFAULT_SPACE.min_genome(), "hw": {"bits": 8}}
        store.put(0, genome, {"top1_pct": 80.0}, 0, key=genome_key(genome))
        if verified:
            store.put_measured(genome_key(genome), 8, protocol, 80.5)
            (d / "front_verification.json").write_text(json.dumps({"protocol": protocol, "source": "predictor"}))
        store.close()
        f[name] = d
    return f


def _fill(arg: str, files: dict) -> str:
    """``{name}`` in an argument -> the path of that fixture file (other braces stay)."""
    return re.sub(r"\{(\w+)\}", lambda m: str(files[m.group(1)]) if m.group(1) in files else m.group(0), arg)


def _snapshot(d: Path) -> dict:
    return {str(p.relative_to(d)): p.read_bytes() for p in sorted(d.rglob("*")) if p.is_file()}


def _cli(args, cwd, timeout=120):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    env.pop("CODESIGN_DEBUG", None)
    env.pop("CODESIGN_ALLOW_LARGE", None)
    r = subprocess.run([sys.executable, "-m", "codesign.cli", *map(str, args)], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=timeout)
    return r.returncode, (r.stdout + r.stderr)


def _assert_refused(code, out, *expect):
    lines = [l for l in out.strip().splitlines() if l.strip()]
    assert code == 2, out[-2000:]
    assert 1 <= len(lines) <= 3, out[-2000:]
    assert "Traceback" not in out, out[-2000:]
    low = out.lower()
    for e in expect:
        assert e.lower() in low, out


# ----------------------------------------------------------------------------- hostile: subprocesses

HOSTILE = [
    # (id, argv with {placeholders} from the files fixture, words the message names)
    ("evaluate-alias-bomb", ["evaluate", "{layers_bomb}"], ["layers_bomb.yaml", "alias"]),
    ("evaluate-many-aliases", ["evaluate", "{many_aliases}"], ["many_aliases.yaml", "aliases"]),
    ("evaluate-deep-yaml", ["evaluate", "{deep}"], ["deep.yaml", "nested"]),
    ("evaluate-binary-yaml", ["evaluate", "{binary_yaml}"], ["binary.yaml"]),
    ("map-alias-bomb", ["map", "{layers_bomb}"], ["layers_bomb.yaml"]),
    ("evaluate-network-alias-bomb", ["evaluate-network", "--arch", "eyeriss_like", "--workload", "{layers_bomb}"],
     ["layers_bomb.yaml", "alias"]),
    ("train-supernet-evil-init", ["train-supernet", "--data", "{small}", "--out", "{dir}/ts1", "--init-from",
                                  "{evil_pickle}"], ["evil.pt", "--init-from"]),
    ("train-supernet-evil-zip-init", ["train-supernet", "--data", "{small}", "--out", "{dir}/ts2", "--init-from",
                                      "{evil_torch}"], ["evil_zip.pt"]),
    ("train-supernet-not-zip", ["train-supernet", "--data", "{notzip}", "--out", "{dir}/ts3"], ["train.zip", "zip"]),
    ("train-supernet-too-small", ["train-supernet", "--data", "{small}", "--out", "{dir}/ts4"], ["train split", "5,000"]),
    ("train-supernet-corrupt-image", ["train-supernet", "--data", "{corrupt}", "--out", "{dir}/ts5"], ["broken.png"]),
    ("accuracy-evil-cifar", ["accuracy", "--genome", "max", "--data", "{cifar_evil}"], ["batches", "refusing"]),
    ("accuracy-evil-weights", ["accuracy", "--genome", "max", "--data", "{small}", "--weights", "{evil_pickle}"],
     ["evil.pt", "--weights"]),
    ("accuracy-garbage-weights", ["accuracy", "--genome", "max", "--weights", "{garbage}"], ["garbage.pt"]),
    ("accuracy-wrong-state", ["accuracy", "--genome", "max", "--weights", "{wrong_state}"], ["wrong_state.pt"]),
    ("accuracy-decompression-bomb", ["accuracy", "--genome", "max", "--data", "{bomb}"], ["bomb.png", "pixel"]),
    ("accuracy-corrupt-image", ["accuracy", "--genome", "max", "--data", "{corrupt}"], ["broken.png"]),
    ("accuracy-data-evil-cifar", ["accuracy-data", "--data", "{cifar_evil}", "--out", "{dir}/ad.jsonl",
                                  "--measurements", "4"],
     ["refusing"]),
    ("accuracy-data-evil-weights", ["accuracy-data", "--data", "{small}", "--weights", "{evil_torch}", "--out",
                                    "{dir}/ad2.jsonl", "--measurements", "4"], ["evil_zip.pt"]),
    ("proxies-too-few-validation-images", ["proxies", "--data", "{small}", "--accuracy-data", "{rows_ok}", "--subnets", "5"],
     ["64"]),
    ("proxies-evil-cifar", ["proxies", "--data", "{cifar_evil}", "--accuracy-data", "{rows_ok}", "--subnets", "5"],
     ["refusing"]),
    ("search-space-alias-bomb", ["search", "--space", "{space_bomb}", "--out", "{dir}/s1", "--accuracy", "macs"],
     ["space_bomb.yaml", "alias"]),
    ("search-evil-weights", ["search", "--accuracy", "measured", "--data", "{small}", "--weights", "{evil_pickle}",
                             "--out", "{dir}/s2"], ["evil.pt"]),
    ("model-card-evil-weights", ["model-card", "--run", "{dir}", "--data", "{small}", "--weights", "{evil_pickle}",
                                 "--out", "{dir}/card.md"], ["evil.pt"]),
    ("sweep-alias-bomb", ["sweep", "{sweep_bomb}", "--out", "{dir}/sw1"], ["sweep_bomb.yaml", "alias"]),
    ("export-evil-weights", ["export", "{dir}", "--weights", "{evil_pickle}"], ["evil.pt"]),
    ("cost-data-space-bomb", ["cost-data", "--space", "{space_bomb}", "--genomes", "2", "--out", "{dir}/cd.jsonl"],
     ["space_bomb.yaml"]),
    ("train-cost-predictor-space-bomb", ["train-cost-predictor", "--cost-data", "{rows_ok}", "--space", "{space_bomb}",
                                         "--out", "{dir}/cp.npz"], ["space_bomb.yaml"]),
]


HAVE_TORCH = importlib.util.find_spec("torch") is not None
TORCH_COMMANDS = ("train-supernet", "accuracy", "accuracy-data", "proxies", "model-card")


def _needs_torch(argv) -> bool:
    return argv[0] in TORCH_COMMANDS or any(a in ("--weights", "--init-from") for a in argv)


# the cases that start torch in their subprocess take about 1.4 s each: in the full suite only
# (the fast subset keeps the others, which cover the same input layer)
HOSTILE_PARAMS = [pytest.param(c, marks=pytest.mark.slow) if _needs_torch(c[1]) else c for c in HOSTILE]


@pytest.mark.parametrize("case", HOSTILE_PARAMS, ids=[c[0] for c in HOSTILE])
def test_hostile_input_in_a_subprocess(files, case):
    _, argv, expect = case
    if _needs_torch(argv) and not HAVE_TORCH:
        pytest.skip("torch is not installed (pip install -e '.[torch]')")
    args = [_fill(a, files) for a in argv]
    before = _snapshot(files["dir"])
    code, out = _cli(args, cwd=files["dir"])
    _assert_refused(code, out, *expect)
    assert not files["marker"].exists(), "a hostile file ran code"
    assert _snapshot(files["dir"]) == before, "a refused command wrote something"


# ----------------------------------------------------------------------------- plain mistakes: in process

MISTAKES = [
    ("map-budget-0", ["map", "{layer}", "--budget", "0"], ["--budget"]),
    ("map-budget-negative", ["map", "{layer}", "--budget", "-3"], ["--budget"]),
    ("map-budget-huge", ["map", "{layer}", "--budget", "10000000000"], ["--budget", "--allow-large"]),
    ("map-out-no-dir", ["map", "{layer}", "--out", "{dir}/no/such/dir/m.yaml"], ["--out"]),
    ("map-budget-not-int", ["map", "{layer}", "--budget", "ten"], ["--budget"]),
    ("evaluate-budget-0", ["evaluate", "{layer}", "--budget", "0"], ["--budget"]),
    ("evaluate-time-limit-nan", ["evaluate", "{layer}", "--time-limit", "nan"], ["--time-limit"]),
    ("evaluate-missing-file", ["evaluate", "{dir}/nope.yaml"], ["nope.yaml"]),
    ("evaluate-network-empty", ["evaluate-network", "--arch", "eyeriss_like", "--workload", "{layers_empty}"],
     ["layers_empty.yaml", "layers"]),
    ("evaluate-network-repeat-negative", ["evaluate-network", "--arch", "eyeriss_like", "--workload", "{layers_neg}"],
     ["layers_neg.yaml", "repeat"]),
    ("evaluate-network-repeat-huge", ["evaluate-network", "--arch", "eyeriss_like", "--workload", "{layers_huge}"],
     ["layers_huge.yaml", "repeat", "--allow-large"]),
    ("evaluate-network-repeat-string", ["evaluate-network", "--arch", "eyeriss_like", "--workload", "{layers_str}"],
     ["repeat"]),
    ("evaluate-network-layers-not-list", ["evaluate-network", "--arch", "eyeriss_like", "--workload",
                                          "{layers_notlist}"], ["layers"]),
    ("evaluate-network-unknown-key", ["evaluate-network", "--arch", "eyeriss_like", "--workload", "{layers_typo}"],
     ["layers_typo.yaml", "layerz"]),
    ("evaluate-network-bits-0", ["evaluate-network", "--arch", "eyeriss_like", "--workload", "{layers_bits0}"],
     ["layers_bits0.yaml", "layers[0].bits.Outputs", "0"]),
    ("evaluate-network-bits-fraction", ["evaluate-network", "--arch", "eyeriss_like", "--workload",
                                        "{layers_bitsfrac}"], ["layers_bitsfrac.yaml", "layers[0].bits.Inputs", "3.5"]),
    ("evaluate-network-bits-unknown-space", ["evaluate-network", "--arch", "eyeriss_like", "--workload",
                                             "{layers_bitsspace}"], ["layers_bitsspace.yaml", "bits.Psums", "data space"]),
    ("evaluate-network-bits-scalar", ["evaluate-network", "--arch", "eyeriss_like", "--workload",
                                      "{layers_bitsscalar}"], ["layers_bitsscalar.yaml", "layers[0].bits"]),
    ("evaluate-network-plot-txt", ["evaluate-network", "--arch", "eyeriss_like", "--workload", "{layer}", "--plot",
                                   "{dir}/x.txt"], ["--plot", "x.txt"]),
    ("evaluate-network-budget-0", ["evaluate-network", "--arch", "eyeriss_like", "--workload", "{layer}",
                                   "--budget", "0"], ["--budget"]),
    ("evaluate-network-unknown-arch", ["evaluate-network", "--arch", "no_such_arch", "--workload", "{layer}"], []),
    ("train-supernet-batch-0", ["train-supernet", "--data", "{small}", "--out", "{dir}/t", "--batch-size", "0"],
     ["--batch-size"]),
    ("train-supernet-lr-negative", ["train-supernet", "--data", "{small}", "--out", "{dir}/t", "--lr", "-1"], ["--lr"]),
    ("train-supernet-no-data", ["train-supernet", "--data", "{dir}/none", "--out", "{dir}/t"], ["--data"]),
    ("train-supernet-no-out", ["train-supernet", "--data", "{small}"], ["--out"]),
    ("train-supernet-resume-missing", ["train-supernet", "--data", "{small}", "--resume", "{dir}/no_run"], ["no_run"]),
    ("train-supernet-resume-not-out", ["train-supernet", "--data", "{small}", "--out", "{dir}/t", "--resume",
                                       "{dir}"], ["--resume"]),
    ("train-supernet-empty-init", ["train-supernet", "--data", "{small}", "--out", "{dir}/t", "--init-from",
                                   "{empty}"], ["empty.pt"]),
    ("accuracy-bits-0", ["accuracy", "--genome", "max", "--bits", "0"], ["--bits"]),
    ("accuracy-bad-genome", ["accuracy", "--genome", '{"ks": 1}'], ["genome"]),
    ("accuracy-missing-weights", ["accuracy", "--genome", "max", "--weights", "{dir}/none.pt"], ["none.pt"]),
    ("accuracy-data-measurements-0", ["accuracy-data", "--data", "{small}", "--out", "{dir}/a.jsonl",
                                      "--measurements", "0"], ["--measurements"]),
    ("accuracy-data-bad-shard", ["accuracy-data", "--data", "{small}", "--out", "{dir}/a.jsonl", "--shard", "3/2"],
     ["--shard"]),
    ("train-predictor-no-genome", ["train-predictor", "--accuracy-data", "{rows_nogenome}", "--out", "{dir}/p.npz"],
     ["nogenome.jsonl", "genome"]),
    ("train-predictor-broken-rows", ["train-predictor", "--accuracy-data", "{rows_broken}", "--out", "{dir}/p.npz"],
     ["broken.jsonl", "line 1"]),
    ("train-predictor-bits-unknown", ["train-predictor", "--accuracy-data", "{rows_bits5}", "--out", "{dir}/p.npz"],
     ["bits5.jsonl", "line 2", "bits: 5"]),
    ("train-predictor-holdout", ["train-predictor", "--accuracy-data", "{rows_ok}", "--out", "{dir}/p.npz",
                                 "--holdout-fraction", "1.5"], ["--holdout-fraction"]),
    ("train-predictor-empty", ["train-predictor", "--accuracy-data", "{empty}", "--out", "{dir}/p.npz"], ["empty"]),
    ("proxies-no-genome", ["proxies", "--data", "{small}", "--accuracy-data", "{rows_nogenome}"],
     ["nogenome.jsonl", "genome"]),
    ("proxies-subnets-0", ["proxies", "--data", "{small}", "--accuracy-data", "{rows_ok}", "--subnets", "0"],
     ["--subnets"]),
    ("search-budget-0", ["search", "--budget", "0", "--out", "{dir}/s"], ["--budget"]),
    ("search-budget-negative", ["search", "--budget", "-3", "--out", "{dir}/s"], ["--budget"]),
    ("search-budget-huge", ["search", "--budget", "100000000", "--out", "{dir}/s"], ["--allow-large"]),
    ("search-mapper-budget-0", ["search", "--mapper-budget", "0", "--out", "{dir}/s"], ["--mapper-budget"]),
    ("search-workers-negative", ["search", "--workers", "-2", "--out", "{dir}/s"], ["--workers"]),
    ("search-population-1", ["search", "--population", "1", "--out", "{dir}/s"], ["--population"]),
    ("search-mutation-2", ["search", "--mutation", "2", "--out", "{dir}/s"], ["--mutation"]),
    ("search-scheduler-no-port", ["search", "--scheduler", "tcp://127.0.0.1", "--out", "{dir}/s"],
     ["--scheduler", "port"]),
    ("search-scheduler-dashboard", ["search", "--scheduler", "http://127.0.0.1:8787/status", "--out", "{dir}/s"],
     ["--scheduler", "dashboard"]),
    ("search-scheduler-garbage", ["search", "--scheduler", "127.0.0.1", "--out", "{dir}/s"], ["--scheduler"]),
    ("search-no-such-supernet", ["search", "--space", "{space_nosupernet}", "--out", "{dir}/s"],
     ["space_nosupernet.yaml", "supernet"]),
    ("search-space-typo", ["search", "--space", "{space_typo}", "--out", "{dir}/s"], ["space_typo.yaml", "constraint"]),
    ("search-space-dram-bw-0", ["search", "--space", "{space_bw0}", "--out", "{dir}/s"], ["space_bw0.yaml", "dram_bw"]),
    ("search-space-reference-negative", ["search", "--space", "{space_ref}", "--out", "{dir}/s"],
     ["space_ref.yaml", "reference.latency"]),
    ("search-missing-space", ["search", "--space", "{dir}/none.yaml", "--out", "{dir}/s"], ["none.yaml"]),
    ("search-resume-missing", ["search", "--resume", "{dir}/no_run"], ["no_run"]),
    ("model-card-samples-negative", ["model-card", "--run", "{dir}", "--data", "{small}", "--out", "{dir}/c.md",
                                     "--samples", "-1"], ["--samples"]),
    ("sweep-workers-negative", ["sweep", "{sweep}", "--workers", "-2", "--out", "{dir}/sw"], ["--workers"]),
    ("sweep-limit-negative", ["sweep", "{sweep}", "--limit", "-1", "--out", "{dir}/sw"], ["--limit"]),
    ("sweep-typo", ["sweep", "{sweep_typo}", "--out", "{dir}/sw"], ["sweep_typo.yaml", "budgt"]),
    ("sweep-scheduler-dashboard", ["sweep", "{sweep}", "--scheduler", "http://localhost:8787/status", "--out",
                                   "{dir}/sw"], ["--scheduler"]),
    ("sweep-axis-huge", ["sweep", "{sweep_axis}", "--out", "{dir}/sw"], ["sweep_axis.yaml", "pe_x", "--allow-large"]),
    ("sweep-grid-huge", ["sweep", "{sweep_grid}", "--out", "{dir}/sw"], ["sweep_grid.yaml", "--allow-large"]),
    ("sweep-random-n-huge", ["sweep", "{sweep_random_n}", "--out", "{dir}/sw"], ["sweep_random_n.yaml", "n"]),
    ("search-space-axis-huge", ["search", "--space", "{space_axis}", "--out", "{dir}/s"], ["space_axis.yaml", "pe_x"]),
    ("cost-data-space-axis-huge", ["cost-data", "--space", "{space_axis}", "--genomes", "2", "--out", "{dir}/c.jsonl"],
     ["space_axis.yaml"]),
    ("sweep-missing-file", ["sweep", "{dir}/none.yaml", "--out", "{dir}/sw"], ["none.yaml"]),
    ("export-not-a-run", ["export", "{small}"], ["small"]),
    ("export-missing", ["export", "{dir}/none"], ["none"]),
    ("plot-missing", ["plot", "{dir}/none"], ["none"]),
    ("plot-not-a-run", ["plot", "{small}"], ["small"]),
    ("report-missing", ["report", "{dir}/none"], ["none"]),
    ("report-not-a-run", ["report", "{small}"], ["small"]),
    ("report-max-details-negative", ["report", "{dir}", "--max-details", "-1"], ["--max-details"]),
    ("cost-data-out-is-a-dir", ["cost-data", "--genomes", "2", "--out", "{dir}"], ["--out", "directory"]),
    ("search-out-is-a-file", ["search", "--out", "{layer}", "--accuracy", "macs"], ["--out", "file"]),
    ("cost-data-genomes-0", ["cost-data", "--genomes", "0", "--out", "{dir}/c.jsonl"], ["--genomes"]),
    ("cost-data-mapper-budget-0", ["cost-data", "--genomes", "2", "--mapper-budget", "0", "--out", "{dir}/c.jsonl"],
     ["--mapper-budget"]),
    ("train-cost-predictor-garbage", ["train-cost-predictor", "--cost-data", "{rows_broken}", "--out", "{dir}/c.npz"],
     ["broken.jsonl"]),
    ("train-cost-predictor-members-0", ["train-cost-predictor", "--cost-data", "{rows_ok}", "--out", "{dir}/c.npz",
                                        "--members", "0"], ["--members"]),
    ("templates-extra-argument", ["templates", "--bogus"], ["--bogus"]),
    ("verify-missing", ["verify", "{dir}/none"], ["none"]),
    ("add-measured-missing", ["add-measured", "{dir}/no_run", "--out", "{dir}/m.jsonl"], ["no_run", "run"]),
    ("add-measured-not-a-run", ["add-measured", "{small}", "--out", "{dir}/m.jsonl"], ["small", "store.sqlite"]),
    ("add-measured-not-verified", ["add-measured", "{run_unverified}", "--out", "{dir}/m.jsonl"],
     ["front_verification.json", "codesign verify"]),
    ("add-measured-bad-line", ["add-measured", "{run_verified}", "--out", "{rows_broken}"],
     ["broken.jsonl", "line 1", "genome"]),
    ("add-measured-out-no-dir", ["add-measured", "{run_verified}", "--out", "{dir}/no/such/m.jsonl"], ["--out"]),
    ("train-predictor-extra-broken", ["train-predictor", "--accuracy-data", "{rows_ok}", "--extra-data",
                                      "{rows_broken}", "--out", "{dir}/p.npz"], ["broken.jsonl", "line 1", "genome"]),
    ("train-predictor-extra-missing", ["train-predictor", "--accuracy-data", "{rows_ok}", "--extra-data",
                                       "{dir}/none.jsonl", "--out", "{dir}/p.npz"], ["none.jsonl", "--extra-data"]),
    ("verify-not-a-run", ["verify", "{small}"], ["small"]),
    ("audit-screening-missing", ["audit-screening", "{dir}/no_run"], ["no_run", "run"]),
    ("audit-screening-not-a-run", ["audit-screening", "{small}"], ["small"]),
    ("audit-screening-no-config", ["audit-screening", "{run_unverified}"], ["run_unverified", "config.json"]),
    ("audit-screening-sample-0", ["audit-screening", "{run_unverified}", "--sample", "0"], ["--sample"]),
    ("verify-images-too-few", ["verify", "{dir}", "--images", "3"], ["--images"]),
    ("search-verify-images-too-few", ["search", "--verify-images", "3", "--out", "{dir}/s"], ["--verify-images"]),
    ("darts-lambda-not-a-number", ["darts", "--data", "{small}", "--lambda", "0.1,abc", "--out", "{dir}/d"],
     ["--lambda"]),
    ("darts-lambda-negative", ["darts", "--data", "{small}", "--lambda", "-1", "--out", "{dir}/d"], ["--lambda"]),
    ("darts-steps-0", ["darts", "--data", "{small}", "--steps-per-epoch", "0", "--out", "{dir}/d"],
     ["--steps-per-epoch"]),
    ("darts-target-missing", ["darts", "--data", "{small}", "--loss", "target", "--out", "{dir}/d"], ["--target"]),
    ("darts-bad-hw", ["darts", "--data", "{small}", "--hw", '{"pe_x": 3}', "--out", "{dir}/d"], ["--hw"]),
    ("darts-bits-not-in-space", ["darts", "--data", "{small}", "--bits", "5", "--out", "{dir}/d"], ["--bits"]),
    ("darts-resume-missing", ["darts", "--resume", "{dir}/no_run"], ["no_run"]),
    ("no-command", [], []),
]


@pytest.mark.parametrize("case", MISTAKES, ids=[c[0] for c in MISTAKES])
def test_mistake_in_process(files, case, capsys):
    _, argv, expect = case
    args = [_fill(a, files) for a in argv]
    before = _snapshot(files["dir"])
    try:
        code = main(args)
    except SystemExit as e:            # argparse's own usage errors
        code = e.code
    cap = capsys.readouterr()
    _assert_refused(code, cap.out + cap.err, *expect)
    assert _snapshot(files["dir"]) == before, "a refused command wrote something"


def test_every_subcommand_is_in_the_catalogue():
    from codesign.cli import build_parser
    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    assert set(sub.choices) == set(COMMANDS)
    covered = {c[1][0] for c in HOSTILE + MISTAKES if c[1]}
    assert set(COMMANDS) <= covered, set(COMMANDS) - covered


# ----------------------------------------------------------------------------- refused --resume: nothing changes

@pytest.fixture(scope="module")
def search_run(tmp_path_factory):
    d = tmp_path_factory.mktemp("run") / "run"
    code, out = _cli(["search", "--budget", "4", "--population", "2", "--accuracy", "macs", "--mapper-budget", "60",
                      "--out", d, "--no-plot", "--no-report", "--quiet"], cwd=d.parent, timeout=300)
    assert code == 0, out
    return d


@pytest.fixture(scope="module")
def sweep_run(tmp_path_factory, files):
    d = tmp_path_factory.mktemp("sweeprun") / "run"
    code, out = _cli(["sweep", files["sweep"], "--limit", "1", "--out", d, "--quiet"], cwd=d.parent, timeout=300)
    assert code == 0, out
    return d


def _break_config(d: Path, key, value):
    cfg = json.loads((d / "config.json").read_text())
    cfg[key] = value
    (d / "config.json").write_text(json.dumps(cfg))


def _break_row(d: Path):
    db = sqlite3.connect(d / "store.sqlite")
    with db:
        db.execute("UPDATE evaluations SET metrics = '{\"broken' WHERE id = (SELECT min(id) FROM evaluations)")
    db.close()


RESUMES = [
    ("search-budget-string", "search", lambda d: _break_config(d, "budget", "400"), ["config.json", "budget"]),
    ("search-population-float", "search", lambda d: _break_config(d, "population", 2.5), ["population"]),
    ("search-broken-row", "search", _break_row, ["store.sqlite", "row"]),
    ("search-config-not-json", "search", lambda d: (d / "config.json").write_text("{budget: 4"), ["config.json"]),
    ("search-config-space-typo", "search", lambda d: _break_config(d, "evaluator", {"space": {"hardwar": {}}}),
     ["config.json"]),
    ("sweep-points-broken", "sweep", lambda d: _break_config(d, "points", [{"network": "nope", "hw": {}}]),
     ["config.json", "points"]),
    ("sweep-mapper-budget-string", "sweep", lambda d: _break_config(d, "mapper", {"budget": "200"}),
     ["config.json", "budget"]),
    ("sweep-broken-row", "sweep", _break_row, ["store.sqlite", "row"]),
]


@pytest.mark.parametrize("case", RESUMES, ids=[c[0] for c in RESUMES])
def test_refused_resume_leaves_the_run_as_it_was(tmp_path, request, case):
    _, kind, breaker, expect = case
    src = request.getfixturevalue("search_run" if kind == "search" else "sweep_run")
    d = tmp_path / "run"
    shutil.copytree(src, d)
    breaker(d)
    before = _snapshot(d)
    code, out = _cli([kind, "--resume", d, "--quiet"], cwd=tmp_path)
    _assert_refused(code, out, *expect)
    assert _snapshot(d) == before
    assert sorted(p.name for p in d.iterdir()) == sorted(before)


@pytest.mark.parametrize("command", [["export", "{d}", "--design", "0", "--out", "{d}/x"], ["report", "{d}"],
                                     ["plot", "{d}"]], ids=["export", "report", "plot"])
def test_readers_of_a_run_name_a_broken_evaluator(tmp_path, search_run, command, capsys):
    """export, report and plot build on the stored evaluator: a hand-edited mapper budget is
    refused naming config.json and the field (it used to surface as the mapper's own 'budget:'
    error, without the file), and nothing is written."""
    d = tmp_path / "run"
    shutil.copytree(search_run, d)
    cfg = json.loads((d / "config.json").read_text())
    cfg["evaluator"]["mapper_budget"] = -1
    (d / "config.json").write_text(json.dumps(cfg))
    before = _snapshot(d)
    assert main([a.replace("{d}", str(d)) for a in command]) == 2
    err = capsys.readouterr().err
    assert "config.json: config.evaluator.mapper_budget: must be >= 1" in err and "Traceback" not in err
    assert _snapshot(d) == before


def test_repeat_is_a_multiplier(tmp_path, capsys):
    """repeat: n weighs one mapped layer n times: the totals of n copies, memory of one."""
    from accelerators.network import MappingCache, evaluate_network, load_layers
    from accelerators.spec import load_architecture
    f = tmp_path / "net.yaml"
    f.write_text("layers:\n  - {type: conv2d, name: a, C: 8, K: 16, P: 7, Q: 7, R: 3, S: 3, repeat: 3}\n")
    arch = load_architecture("eyeriss_like")
    one = load_layers(f, expand=False)
    assert len(one) == 1 and one[0].repeat == 3
    a = evaluate_network(one, arch, budget=300, cache=MappingCache())
    b = evaluate_network(load_layers(f), arch, budget=300, cache=MappingCache())
    for k in ("layers", "macs", "cycles"):
        assert a.totals[k] == b.totals[k]
    assert a.totals["energy_pj"] == pytest.approx(b.totals["energy_pj"])
    assert len(a.rows) == 1 and a.rows[0]["repeat"] == 3


def test_yaml_limits_are_quick():
    """The alias bomb is refused before it is expanded (well under a second, no memory growth)."""
    import time
    from accelerators.errors import SpecError
    from accelerators.limits import load_yaml_text
    t = time.perf_counter()
    with pytest.raises(SpecError, match="alias"):
        load_yaml_text("description:\n" + _bomb_yaml(levels=12, width=12), "x.yaml")
    assert time.perf_counter() - t < 2


# ----------------------------------------------------------------------------- --scheduler: no hang

def _server(reply: bytes | None):
    """A loopback TCP server that is not a Dask scheduler: silent (``reply`` None) or answering
    every connection with ``reply`` (an HTTP server, say). Returns (port, stop)."""
    import socket
    import threading
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    srv.settimeout(0.2)
    stop = threading.Event()
    conns = []

    def serve():
        while not stop.is_set():
            try:
                c, _ = srv.accept()
            except OSError:
                continue
            conns.append(c)
            if reply is not None:
                try:
                    c.sendall(reply)
                except OSError:
                    pass

    threading.Thread(target=serve, daemon=True).start()

    def close():
        stop.set()
        for c in conns:
            c.close()
        srv.close()
    return srv.getsockname()[1], close


@pytest.mark.parametrize("kind", [pytest.param("silent", marks=pytest.mark.slow), "http", "refused"])
def test_scheduler_that_is_not_one_fails_fast(tmp_path, kind):
    import socket
    import time
    if kind == "refused":
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        s.close()
        close = lambda: None       # noqa: E731
    else:
        port, close = _server(None if kind == "silent" else b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
    try:
        t = time.perf_counter()
        code, out = _cli(["search", "--scheduler", f"tcp://127.0.0.1:{port}", "--accuracy", "macs", "--out",
                          tmp_path / "s"], cwd=tmp_path, timeout=60)
        took = time.perf_counter() - t
    finally:
        close()
    _assert_refused(code, out, f"tcp://127.0.0.1:{port}", "--scheduler")
    assert took < 25                                    # 15 s connect timeout + start-up
    assert not (tmp_path / "s").exists()


def test_layer_bit_widths_are_checked_where_they_enter():
    """Per-data-space bit-widths, from the Python API, our layer files and a Timeloop input's
    ``codesign.bits`` block: integers 1..1024 (numpy's too) for the layer's own data spaces; each
    mistake is a SpecError naming the field (a bit-width of 0 used to end in a division by zero)."""
    import numpy as np
    from accelerators import matmul
    from accelerators.errors import SpecError
    from accelerators.timeloop import load_inputs
    assert matmul(M=2, N=2, K=2, bits={"Inputs": np.int64(4)}).bits == {"Inputs": 4}
    for bits, field in (({"Outputs": 0}, "bits.Outputs"), ({"Inputs": True}, "bits.Inputs"),
                        ({"Inputs": 2000}, "bits.Inputs"), ({"Foo": 8}, "bits.Foo"), (8, "bits")):
        with pytest.raises(SpecError) as e:
            matmul(M=2, N=2, K=2, bits=bits)
        assert e.value.field == field
    need_timeloop_reference()
    d = TIMELOOP_REF / "cases/example_designs_eyeriss_like/ref_outputs/default_problem"
    import tempfile
    with tempfile.TemporaryDirectory() as t:
        ext = Path(t) / "bits.yaml"
        ext.write_text("codesign:\n  bits: {Inputs: 2.5}\n")
        with pytest.raises(SpecError) as e:
            load_inputs([d / "parsed-processed-input.yaml", ext])
        assert e.value.field == "codesign.bits.Inputs" and e.value.file == str(ext)
        ext.write_text("codesign:\n  bits: {Inputs: 4}\n")
        assert load_inputs([d / "parsed-processed-input.yaml", ext])[1].bits == {"Inputs": 4}


def test_architecture_mistakes_found_when_it_meets_a_layer(tmp_path, capsys):
    """A level's ``keeps`` naming a data space the layer does not have (a typo used to make the
    level silently keep nothing of it) and a PE array beyond the size limit (10^10 MACs used to
    enumerate billions of children for the link rule, for minutes and gigabytes): one line each,
    naming the file and the field, exit status 2."""
    src = (REPO / "accelerators/specs/accelerators/eyeriss_like.yaml").read_text()
    layer = tmp_path / "layer.yaml"
    layer.write_text("workload: {type: conv2d, name: c, K: 16, C: 16, P: 8, Q: 8, R: 3, S: 3}\n")
    typo = tmp_path / "typo.yaml"
    typo.write_text(src.replace("keeps: [Inputs]", "keeps: [Inputz]", 1))
    huge = tmp_path / "huge.yaml"
    huge.write_text(src.replace("pe_array: {x: 14, y: 12}", "pe_array: {x: 100000, y: 100000}", 1))
    assert main(["map", str(typo), str(layer), "--budget", "200"]) == 2
    err = capsys.readouterr().err
    assert "typo.yaml: architecture.levels.InputSpad.keeps: unknown data space 'Inputz'" in err
    assert "Traceback" not in err
    assert main(["map", str(huge), str(layer), "--budget", "200"]) == 2
    err = capsys.readouterr().err
    assert "huge.yaml: architecture.pe_array" in err and "--allow-large" in err
    from accelerators.network import evaluate_network, load_layers
    from accelerators.spec import load_architecture
    from accelerators.errors import SpecError
    with pytest.raises(SpecError) as e:
        evaluate_network(load_layers(REPO / "specs/workloads/resnet18.yaml"), load_architecture(typo),
                         budget=200)
    assert e.value.file == str(typo) and e.value.field == "architecture.levels.InputSpad.keeps"


def test_link_enumeration_memory_is_bounded():
    """``links.choose`` enumerates the children of many queries in slices of at most
    ``_ENUM_WORDS`` children: the answers do not depend on the slicing."""
    import numpy as np
    import accelerators.links as links
    rng = np.random.default_rng(0)
    n, D = 40, 3
    sx = rng.choice([1, 2, 4], (n, D))
    sy = rng.choice([1, 2, 3], (n, D))
    inner = rng.integers(1, 4, (n, D))
    codes = np.array([1, 9, 81])
    tau = rng.choice([0, 1, 9, -9, 10], n)
    whole = links.choose(sx, sy, inner, codes, tau, 64, 64, _distinct_rows=True)
    old = links._ENUM_WORDS
    try:
        links._ENUM_WORDS = 64
        sliced = links.choose(sx, sy, inner, codes, tau, 64, 64, _distinct_rows=True)
    finally:
        links._ENUM_WORDS = old
    for a, b in zip(whole, sliced):
        assert (a == b).all()
    assert (whole[2] < whole[0]).any()            # some queries do link


def test_hand_made_mapping_batches_are_checked():
    """``evaluate_batch`` on arrays built by hand: a wrong shape or dtype, a factor below 1 or a
    loop order that is not a permutation is a ValueError naming the array and the entry (a loop
    order of repeated dimensions used to be evaluated as a *valid* mapping with made-up figures;
    a negative factor gave negative energies). The innermost level's order, above no level, is
    not read (Timeloop ignores it too), so it is not checked; valid batches give the same figures."""
    import numpy as np
    from accelerators import conv2d, evaluate_batch
    from accelerators.mapping import MappingBatch
    from accelerators.sampling import random_valid_batch
    from accelerators.spec import load_architecture
    arch = load_architecture("eyeriss_like")
    work = conv2d("c", K=16, C=16, P=8, Q=8, R=3, S=3)
    b = random_valid_batch(arch, work, 8, seed=0)
    ref = evaluate_batch(arch, work, b)

    def copy():
        return MappingBatch(b.tf.copy(), b.sx.copy(), b.sy.copy(), b.perm.copy(), b.keep.copy())
    cases = []
    c = copy(); c.tf[3, 0, 1] = 0; cases.append((c, "MappingBatch.tf[3, 0, 1]: factors must be positive"))
    c = copy(); c.tf[0, 0, 1] = -2; cases.append((c, "MappingBatch.tf[0, 0, 1]"))
    c = copy(); c.sy[2, 1, 2] = -1; cases.append((c, "MappingBatch.sy[2, 1, 2]"))
    c = copy(); c.perm[0, 0, :] = 0; cases.append((c, "MappingBatch.perm[0, 0]: [0, 0, 0, 0, 0, 0, 0] is not a permutation"))
    c = copy(); c.perm[5, 2, 0] = c.perm[5, 2, 1]; cases.append((c, "MappingBatch.perm[5, 2]"))
    c = copy(); c.perm[1, 1, 0] = 9; cases.append((c, "MappingBatch.perm[1, 1]"))
    cases.append((MappingBatch(b.tf[:, :2], b.sx, b.sy, b.perm, b.keep), "MappingBatch.tf: shape (8, 2, 7)"))
    cases.append((MappingBatch(b.tf.astype(float), b.sx, b.sy, b.perm, b.keep), "MappingBatch.tf: dtype float64"))
    cases.append((MappingBatch(b.tf, b.sx, b.sy, b.perm, b.keep.astype(int)), "MappingBatch.keep: dtype"))
    for batch, msg in cases:
        with pytest.raises(ValueError) as e:
            evaluate_batch(arch, work, batch)
        assert msg in str(e.value), (msg, str(e.value))
    c = copy()
    c.perm[:, -1, :] = 0                          # the innermost level's order: never read
    res = evaluate_batch(arch, work, c)
    assert (res.energy_pj == ref.energy_pj).all() and (res.cycles == ref.cycles).all()
    # a dimension of bound 1 (N) may sit anywhere in the orders: still a permutation
    c = copy()
    c.perm[:, 0, :] = c.perm[:, 0, ::-1]
    evaluate_batch(arch, work, c)


def test_python_api_mistakes_are_named():
    """The mapper's budget and elites, a scalar mapping's repeated loop or keep of an unknown data
    space: a MappingError naming the field (these used to surface as numpy's own errors, or as a
    wrong reason: 'the outermost level must keep Weights'); a budget of 1 maps."""
    from accelerators import conv2d, evaluate
    from accelerators.errors import MappingError
    from accelerators.mapper import map_layer
    from accelerators.mapping import LevelMapping, Mapping
    from accelerators.spec import load_architecture
    arch = load_architecture("eyeriss_like")
    work = conv2d("c", K=16, C=16, P=8, Q=8, R=3, S=3)
    for kw, field in (({"budget": 0}, "budget"), ({"budget": -5}, "budget"), ({"budget": 100.5}, "budget"),
                      ({"budget": 500, "elites": 0}, "elites")):
        with pytest.raises(MappingError) as e:
            map_layer(arch, work, **kw)
        assert e.value.field == field
    assert map_layer(arch, work, budget=1).evaluated == 1
    m = map_layer(arch, work, budget=300).mapping
    top = m.levels[0]

    def first(**kw):
        d = dict(temporal=top.temporal, permutation=top.permutation, spatial_x=top.spatial_x,
                 spatial_y=top.spatial_y, keep=top.keep)
        d.update(kw)
        return Mapping((LevelMapping(**d),) + m.levels[1:])
    for bad, field, words in ((first(permutation=("K", "K")), "mapping.DRAM.permutation", "more than once"),
                              (first(spatial_permutation=("K", "Z")), "mapping.DRAM.spatial_permutation", "'Z'"),
                              (first(keep=frozenset({"Foo"})), "mapping.DRAM.keep", "unknown data space 'Foo'")):
        with pytest.raises(MappingError) as e:
            evaluate(arch, work, bad)
        assert e.value.field == field and words in e.value.message


@pytest.mark.parametrize("old, new, field", [
    ("compute: {name: MAC}", "compute: {name: MAC, energy_pj: -1}", "architecture.compute.energy_pj"),
    ("compute: {name: MAC}", "compute: {name: MAC, area_um2: .nan}", "architecture.compute.area_um2"),
    ("compute: {name: MAC}", "compute: {name: MAC, multiplier_bits: abc}", "architecture.compute.multiplier_bits"),
    ("    keeps: [Inputs]", "    keeps: [Inputs]\n    energy_pj: {read: abc}", "architecture.levels.InputSpad.energy_pj.read"),
    ("    keeps: [Inputs]", "    keeps: [Inputs]\n    area_um2: -3", "architecture.levels.InputSpad.area_um2"),
    ("clock_ghz: 0.2", "clock_ghz: .inf", "architecture.clock_ghz"),
    ("size_kib: 108", "size_kib: .nan", "architecture.levels.GlobalBuffer.size_kib"),
], ids=["mac-energy-negative", "mac-area-nan", "multiplier-bits-text", "energy-text", "area-negative",
        "clock-inf", "size-nan"])
def test_architecture_figures_are_finite_numbers(tmp_path, capsys, old, new, field):
    """Energies and areas of our architecture files are finite numbers >= 0, sizes and clocks
    positive and finite (text used to end in an internal error, NaN and negative energies were
    evaluated)."""
    src = (REPO / "accelerators/specs/accelerators/eyeriss_like.yaml").read_text()
    assert old in src
    arch = tmp_path / "arch.yaml"
    arch.write_text(src.replace(old, new, 1))
    layer = tmp_path / "layer.yaml"
    layer.write_text("workload: {type: conv2d, name: c, K: 16, C: 16, P: 8, Q: 8, R: 3, S: 3}\n")
    assert main(["map", str(arch), str(layer), "--budget", "100"]) == 2
    err = capsys.readouterr().err
    assert f"arch.yaml: {field}:" in err and "Traceback" not in err


def test_timeloop_energy_and_area_tables_are_checked(tmp_path, capsys):
    """A Timeloop ERT with a negative or NaN energy, or an ART with a non-numeric area, is one line
    naming the file and the entry (they used to be evaluated, or end in an internal error)."""
    need_timeloop_reference()
    import yaml
    d = TIMELOOP_REF / "cases/example_designs_eyeriss_like/ref_outputs/default_problem"
    base = [str(d / "parsed-processed-input.yaml"), str(d / "timeloop-mapper.map.yaml")]
    for name, table, key, value, words in (("ERT", "timeloop-mapper.ERT.yaml", "energy", -5.0, "ERT.DRAM"),
                                           ("ERT", "timeloop-mapper.ERT.yaml", "energy", float("nan"), "ERT.DRAM"),
                                           ("ART", "timeloop-mapper.ART.yaml", "area", "big", "ART.DRAM.area")):
        doc = yaml.safe_load((d / table).read_text())
        first = doc[name]["tables"][0]
        if key == "energy":
            first["actions"][0]["energy"] = value
        else:
            first["area"] = value
        f = tmp_path / f"{name}.yaml"
        f.write_text(yaml.safe_dump(doc))
        assert main(["evaluate", *base, str(f)]) == 2
        err = capsys.readouterr().err
        assert f"{f.name}: {words}" in err and "Traceback" not in err
