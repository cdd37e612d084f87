"""Whole-network evaluation: layer loaders (our YAML, Timeloop layer files, torch.fx), the
mapping cache, totals, JSON/DataFrame/plot outputs and the command line."""
import json

import pytest

from accelerators.network import MappingCache, evaluate_network, load_layers, plot_network
from accelerators.spec import load_architecture
from codesign.cli import main
from conftest import REPO, TIMELOOP_REF, need_timeloop_reference

RESNET = REPO / "specs/workloads/resnet18.yaml"


def test_resnet18_yaml_layers():
    layers = load_layers(RESNET)
    assert len(layers) == 21
    assert sum(l.work.macs for l in layers) == 1_814_073_344       # ResNet-18 at 224x224: 1.81 GMACs
    assert len({l.work.key() for l in layers}) == 12


def test_mobilenet_v3_yaml_layers():
    layers = load_layers(REPO / "specs/workloads/mobilenet_v3_large.yaml")
    assert len(layers) == 64
    assert 210e6 < sum(l.work.macs for l in layers) < 225e6         # paper: 219 M multiply-adds
    assert any("G" in l.work.dims for l in layers)                  # depthwise layers


def test_timeloop_layer_shapes_match_ours():
    ref = need_timeloop_reference()
    tl = load_layers(ref / "layer_shapes" / "resnet18")
    assert len(tl) == 21
    assert sum(l.work.macs for l in tl) == sum(l.work.macs for l in load_layers(RESNET))
    mb = load_layers(ref / "layer_shapes" / "mobilenet_v3")
    assert len(mb) == 64 and any(l.work.dims[0] == "G" for l in mb)


def test_cache_maps_each_shape_once_and_totals_add_up(tmp_path):
    arch = load_architecture("simba_like")
    layers = load_layers(RESNET)
    cache = MappingCache()
    res = evaluate_network(layers, arch, budget=1500, cache=cache)
    assert cache.misses == 12 and cache.hits == 9
    assert sum(r["cached"] for r in res.rows) == 9
    again = evaluate_network(layers, arch, budget=1500, cache=cache)
    assert cache.misses == 12 and cache.hits == 30
    assert again.totals == res.totals
    t = res.totals
    assert t["energy_pj"] == pytest.approx(sum(r["energy_pj"] for r in res.rows))
    assert t["cycles"] == sum(r["cycles"] for r in res.rows)
    assert t["edp_pj_cycles"] == pytest.approx(t["energy_pj"] * t["cycles"])
    assert t["area_um2"] == pytest.approx(arch.area_um2())
    assert t["energy_pj"] == pytest.approx(sum(t["energy_per_level_pj"].values()) + t["mac_energy_pj"])
    df = res.table
    assert len(df) == 21 and {"layer", "cycles", "energy_pj", "utilization"} <= set(df.columns)
    d = json.loads(res.to_json())
    assert d["totals"]["layers"] == 21 and isinstance(d["layers"][0]["mapping"], list)
    png = tmp_path / "net.png"
    plot_network(res, png)
    assert png.stat().st_size > 10_000
    # a different budget is a different cache entry
    evaluate_network(layers[:1], arch, budget=1600, cache=cache)
    assert cache.misses == 13


def test_network_maps_its_layers_in_lockstep_as_one_by_one():
    """``evaluate_network`` maps a network's missing shapes together (``map_layers``): every
    layer's mapping, energy and cycles are those of mapping it alone (``get_or_map``), and a
    progress bar moves once per distinct shape."""
    from accelerators.timeloop import mapping_to_timeloop
    arch = load_architecture("eyeriss_like")
    layers = load_layers(REPO / "specs/workloads/mobilenet_v3_large.yaml", expand=False)
    ticks = []
    cache = MappingCache()
    cache.get_or_map_many([l.work for l in layers[:3]], arch, on_mapped=ticks.append, budget=800, seed=2)
    assert ticks == [len({l.work.key() for l in layers[:3]})] + [None] * ticks[0]
    res = evaluate_network(layers, arch, budget=800, seed=2, cache=MappingCache(), progress=True)
    alone = MappingCache()
    for layer, row in zip(layers, res.rows):
        one, hit = alone.get_or_map(layer.work, arch, "dataflow", objective="edp", budget=800, seed=2)
        assert row["mapping"] == mapping_to_timeloop(one.mapping, arch, layer.work), layer.name
        assert row["cycles"] == one.evaluation.cycles * layer.repeat
        assert row["energy_pj"] == one.evaluation.energy_pj * layer.repeat
        assert row["cached"] == hit


def test_torch_fx_import_counts_layers_and_macs():
    torch = pytest.importorskip("torch", reason="torch is not installed (pip install '.[torch]')")
    from torch import nn
    from accelerators.torch_frontend import layers_from_torch

    class Small(nn.Module):
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 8, 3, padding=1)
            self.dw = nn.Conv2d(8, 8, 3, stride=2, padding=1, groups=8)
            self.pw = nn.Conv2d(8, 16, 1)
            self.grp = nn.Conv2d(16, 16, 3, padding=1, groups=4)
            self.pool = nn.AdaptiveAvgPool2d(1)
            self.fc = nn.Linear(16, 10)

        def forward(self, x):
            x = torch.relu(self.conv(x))
            x = torch.relu(self.dw(x))
            x = self.pw(x) + 0.5
            x = self.grp(x)
            return self.fc(torch.flatten(self.pool(x), 1))

    layers = layers_from_torch(Small(), (1, 3, 32, 32))
    assert [l.name for l in layers] == ["conv", "dw", "pw", "grp", "fc"]
    hand = [32 * 32 * 8 * 3 * 9,            # conv: P*Q*K*C*R*S
            16 * 16 * 8 * 9,                # depthwise, stride 2: P*Q*channels*R*S
            16 * 16 * 16 * 8,               # pointwise
            16 * 16 * 16 * 4 * 9,           # grouped (4 groups of 4 -> 4)
            16 * 10]                        # linear
    assert [l.work.macs for l in layers] == hand
    assert layers[1].work.bounds["G"] == 8 and layers[3].work.bounds["G"] == 4
    res = evaluate_network(layers, load_architecture("shidiannao_like"), budget=800,
                           cache=MappingCache())
    assert res.totals["macs"] == sum(hand)


def test_cli_evaluate_network(tmp_path, capsys):
    f = tmp_path / "net.yaml"
    f.write_text("layers:\n"
                 "  - {type: conv2d, name: a, C: 16, K: 32, P: 14, Q: 14, R: 3, S: 3, repeat: 2}\n"
                 "  - {type: depthwise_conv2d, name: dw, C: 32, P: 7, Q: 7, R: 3, S: 3, stride: 2}\n"
                 "  - {type: fully_connected, name: fc, in_features: 32, out_features: 10}\n")
    png = tmp_path / "p.png"
    code = main(["evaluate-network", "--arch", "eyeriss_like", "--workload", str(f), "--json",
                 "--budget", "1000", "--plot", str(png)])
    d = json.loads(capsys.readouterr().out)
    assert code == 0 and d["totals"]["layers"] == 4 and d["totals"]["distinct_shapes"] == 3
    assert png.exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text("layers:\n  - {type: conv2d, name: a, C: 16}\n")
    code = main(["evaluate-network", "--arch", "eyeriss_like", "--workload", str(bad)])
    err = capsys.readouterr().err
    assert code == 2 and "bad.yaml" in err and "layers[0]" in err and len(err.strip().splitlines()) == 1


def test_cli_map_writes_a_mapping_evaluate_accepts(tmp_path, capsys):
    layer = tmp_path / "layer.yaml"
    layer.write_text("architecture: tpu_like\n"
                     "workload: {type: conv2d, K: 64, C: 32, P: 14, Q: 14, R: 3, S: 3}\n")
    out = tmp_path / "map.yaml"
    code = main(["map", str(layer), "--json", "--budget", "3000", "--out", str(out)])
    mapped = json.loads(capsys.readouterr().out)
    assert code == 0 and isinstance(mapped["mapping"], list) and mapped["mapper"]["evaluated"] <= 3000
    code = main(["evaluate", str(layer), str(out), "--json"])
    again = json.loads(capsys.readouterr().out)
    assert code == 0 and again["note"] == "mapping: as given"
    assert again["energy_pj"] == pytest.approx(mapped["energy_pj"]) and again["cycles"] == mapped["cycles"]


def test_a_layer_without_a_mapping_keeps_the_others_mapped():
    """Mapped in lockstep, a shape that has no valid mapping raises its own one-line reason
    (which layer, which level), and the shapes mapped beside it stay in the cache: nothing
    already computed is lost; alone the good shape gives the same mapping."""
    from accelerators import matmul
    from accelerators.constraints import Constraints, LevelConstraint
    from accelerators.errors import MappingError
    from accelerators.spec import build_architecture
    arch = build_architecture({"name": "small", "levels": [{"name": "DRAM", "kind": "dram"},
                                                           {"name": "Reg", "kind": "regfile", "size_words": 3}]})
    must = Constraints((("Reg", LevelConstraint(keep=frozenset({"Weights", "Inputs", "Outputs"}))),))
    good = matmul("good", M=4, N=4, K=4)
    bad = matmul("bad", M=4, N=4, K=4, bits={"Outputs": 32})      # 1 + 1 + 2 words > 3
    cache = MappingCache()
    with pytest.raises(MappingError) as e:
        cache.get_or_map_many([good, bad], arch, must, budget=300)
    assert "no valid mapping of bad" in e.value.message and "Reg" in e.value.message
    res, hit = cache.get_or_map(good, arch, must, budget=300)
    assert hit
    alone, _ = MappingCache().get_or_map(good, arch, must, budget=300)
    assert res.mapping == alone.mapping and res.edp == alone.edp
