"""The layers a genome's subnet runs, as accelerator workloads (no torch needed): what the
co-search maps onto a candidate accelerator. Mirrors ``codesign.nn.supernet``."""
from __future__ import annotations

from accelerators.network import Layer
from accelerators.workload import conv2d, depthwise_conv2d, fully_connected

from codesign.space.genome import DEFAULT_SPACE, SearchSpace
from codesign.nn.shape import HEAD, STAGES, STEM, make_divisible


def genome_layers(genome: dict, num_classes: int = 10, bits: dict | None = None,
                  space: SearchSpace = DEFAULT_SPACE) -> list[Layer]:
    g = space.validate(genome)
    h = g["r"]
    out = [Layer("stem", conv2d("stem", K=STEM, C=3, P=h, Q=h, R=3, S=3, bits=bits)),
           Layer("first.dw", depthwise_conv2d("first.dw", C=STEM, P=h, Q=h, R=3, S=3, bits=bits)),
           Layer("first.pw", conv2d("first.pw", K=STEM, C=STEM, P=h, Q=h, R=1, S=1, bits=bits))]
    cin = STEM
    active = {i for _, i in space.active_blocks(g)}
    for s, (width, stride, se, _) in enumerate(STAGES):
        for b in range(space.max_depth):
            i = s * space.max_depth + b
            if i not in active:
                continue
            st = stride if b == 0 else 1
            k, e = g["ks"][i], g["e"][i]
            cmid = cin * e
            ho = -(-h // st)
            name = f"s{s}.b{b}"
            out.append(Layer(f"{name}.expand", conv2d(f"{name}.expand", K=cmid, C=cin, P=h, Q=h, R=1, S=1, bits=bits)))
            out.append(Layer(f"{name}.dw", depthwise_conv2d(f"{name}.dw", C=cmid, P=ho, Q=ho, R=k, S=k,
                                                            stride=st, bits=bits)))
            if se:
                mid = make_divisible(cmid // 4)
                out.append(Layer(f"{name}.se1", fully_connected(f"{name}.se1", in_features=cmid, out_features=mid, bits=bits)))
                out.append(Layer(f"{name}.se2", fully_connected(f"{name}.se2", in_features=mid, out_features=cmid, bits=bits)))
            out.append(Layer(f"{name}.project", conv2d(f"{name}.project", K=width, C=cmid, P=ho, Q=ho, R=1, S=1, bits=bits)))
            h, cin = ho, width
    out.append(Layer("head", conv2d("head", K=HEAD, C=cin, P=h, Q=h, R=1, S=1, bits=bits)))
    out.append(Layer("classifier", fully_connected("classifier", in_features=HEAD, out_features=num_classes, bits=bits)))
    return out


def genome_macs(genome: dict, num_classes: int = 10) -> int:
    return sum(l.work.macs for l in genome_layers(genome, num_classes))
