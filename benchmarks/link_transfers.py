#!/usr/bin/env python3
"""How often Timeloop's link transfers (``ComputeNetworkLinkTransfers``) matter on the shipped
templates: the batched model (which does not model them) against ``accelerators.reference``
with link transfers on (Timeloop's default), on the mapper's best mapping and on random valid
mappings of one small conv layer per template.

    python3 benchmarks/link_transfers.py [--random 30] [--templates eyeriss_like tpu_like ...]

Prints, per template, the level / data space counts that differ and the share of mappings with
any difference; the last line is ``link_transfer_mismatch_share: <fraction over all mappings>``.
"""
from __future__ import annotations

import argparse

from accelerators import conv2d, evaluate_batch
from accelerators.constraints import dataflow_constraints
from accelerators.mapper import map_layer
from accelerators.mapping import from_batch, to_batch
from accelerators.reference import reference_counts
from accelerators.sampling import random_valid_batch
from accelerators.spec import list_templates, load_architecture


def differences(arch, work, mapping, res, i) -> list:
    ref = reference_counts(arch, work, mapping, link_transfers=True)
    out = []
    for l, lv in enumerate(arch.levels):
        for s, ds in enumerate(work.dataspaces):
            got = (int(res.reads[i, l, s]), int(res.fills[i, l, s]), int(res.updates[i, l, s]))
            want = ref.get((lv.name, ds.name), (0, 0, 0))
            if got != want:
                out.append(f"{lv.name}.{ds.name} model r/f/u {got} vs Timeloop rule {want}")
    return out


def main(argv=None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--random", type=int, default=30, help="random valid mappings per template (default 30)")
    ap.add_argument("--templates", nargs="*", default=list_templates(), help="templates (default: all)")
    ap.add_argument("--seed", type=int, default=1, help="seed of the random mappings (default 1)")
    a = ap.parse_args(argv)
    work = conv2d(K=16, C=8, P=8, Q=8, R=3, S=3)
    total = bad_total = 0
    for name in a.templates:
        arch = load_architecture(name)
        best = map_layer(arch, work, dataflow_constraints(arch, work), budget=3000, seed=0)
        res = evaluate_batch(arch, work, to_batch([best.mapping], arch, work))
        diff = differences(arch, work, best.mapping, res, 0)
        print(f"{name}: mapper's best mapping: {'; '.join(diff) or 'identical'}")
        rb = random_valid_batch(arch, work, a.random, seed=a.seed)
        res = evaluate_batch(arch, work, rb)
        bad = sum(bool(differences(arch, work, from_batch(rb, i, arch, work), res, i)) for i in range(len(rb)))
        print(f"{name}: {bad}/{len(rb)} random valid mappings differ")
        total += len(rb) + 1
        bad_total += bad + bool(diff)
    print(f"link_transfer_mismatch_share: {bad_total / total:.3f}")


if __name__ == "__main__":
    main()
