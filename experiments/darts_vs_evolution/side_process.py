"""Side process (core 0): the --hw-space co-search and the re-measurement of finished DARTS sub-runs'
genomes, into the benchmark's run directory, with exactly the benchmark's configuration."""
import json, sys, time
from dataclasses import replace
from pathlib import Path
sys.path.insert(0, "/tmp/wt-darts/benchmarks")
import darts as B  # the benchmark module (pins this process to its lowest allowed core)
import torch
torch.set_num_threads(1)
from codesign.darts.run import DartsConfig, run_darts
from codesign.space.joint import load_space
out = Path("/tmp/darts_real")
sp = load_space()
cfg = DartsConfig(data="/work/shared/data/cifar10", hw=dict(sp.baseline, bits=8), bits=8, epochs=2, steps_per_epoch=40,
                  eval_images=2000, warmup_epochs=0, entropy_reg=0.0, seed=0)
ref = json.loads((out / "darts" / "lambda_0" / "config.json").read_text())
assert replace(cfg, lam=0.0).to_json() == ref, (replace(cfg, lam=0.0).to_json(), ref)
lambdas = [0.0, 0.02, 0.1, 0.5]
space = replace(sp, net=replace(sp.net, resolutions=(cfg.resolution,)))
t = time.time()
hw = run_darts(replace(cfg, hw_space=True, lam=0.1, surrogate_samples=3000), out / "hw_space", progress=False)
print("hw_space done", time.time() - t, hw["edp_vs_baseline"], hw["within_onchip_limit"], flush=True)
meas = B.Measurer(cfg, space, out / "measured.jsonl")
done = set()
while len(done) < len(lambdas):
    for lam in lambdas:
        p = out / "darts" / f"lambda_{lam:g}" / "result.json"
        if lam not in done and p.is_file():
            g = json.loads(p.read_text())["genome"]
            print("measure", lam, meas(g), flush=True)
            done.add(lam)
    time.sleep(10)
print("helper done", flush=True)
