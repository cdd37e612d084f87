"""The mapspace's fast paths against what they replaced. MapSpace.neighbors lists its moves on
plain ints and applies them in a few array operations: held equal, row for row and in order, to
the plain one-copy-per-neighbour loop (kept here as the reference), on sampled mappings of real
layers on several templates and dataflows (fixed factors, constrained loop orders and free bypass
choices included). The mapper's distinct-row index equals ``np.unique``'s. The samplers draw slots with a cached inverse CDF: held equal to numpy's own
``Generator.choice(k, size=n, p=p)``, draws and generator state after."""
import itertools

import numpy as np
import pytest

from accelerators.constraints import dataflow_constraints
from accelerators.mapspace import MapSpace, T, _cdf, _choice
from accelerators.network import load_layers
from accelerators.sampling import prime_factors
from accelerators.spec import load_architecture
from conftest import REPO


def neighbors_loop(space, one, max_orders=720):
    """The former implementation: one copy of the factor array per neighbour, in this order."""
    vals = space.values(one)[0]
    perm, keep = one.perm[0], one.keep[0]
    out_v, out_p, out_k = [], [], []
    for j in range(space.D):
        slots = [tuple(x) for x in np.argwhere(space.free[:, j, :])]
        for a in slots:
            v = int(vals[a[0], j, a[1]])
            qs = sorted(set(prime_factors(v))) if v > 1 else []
            if v > 1 and v not in qs:
                qs.append(v)
            for q in qs:
                for b in slots:
                    if b == a:
                        continue
                    nv = vals.copy()
                    nv[a[0], j, a[1]] //= q
                    nv[b[0], j, b[1]] *= q
                    out_v.append(nv), out_p.append(perm), out_k.append(keep)
    for l1 in range(space.L):
        for l2 in range(space.L):
            if l1 == l2:
                continue
            for a in range(space.D):
                if not (space.free[l1, a, T] and space.free[l2, a, T]) or vals[l1, a, T] == 1:
                    continue
                for b in range(space.D):
                    if b == a or not (space.free[l1, b, T] and space.free[l2, b, T]) or vals[l2, b, T] == 1:
                        continue
                    for q in sorted(set(prime_factors(int(vals[l1, a, T])))):
                        for r in sorted(set(prime_factors(int(vals[l2, b, T])))):
                            nv = vals.copy()
                            nv[l1, a, T] //= q
                            nv[l2, a, T] *= q
                            nv[l2, b, T] //= r
                            nv[l1, b, T] *= r
                            out_v.append(nv), out_p.append(perm), out_k.append(keep)
    tf = vals[..., T] * space.fixed[..., T]
    for l in range(space.L):
        lo = len(space.prefix[l])
        nontriv = [pos for pos in range(lo, space.D) if tf[l, perm[l, pos]] > 1]
        if len(nontriv) < 2:
            continue
        dims = [perm[l, pos] for pos in nontriv]
        for k, order in enumerate(itertools.permutations(dims)):
            if k >= max_orders:
                break
            if list(order) == dims:
                continue
            np_ = perm.copy()
            np_[l, nontriv] = order
            out_v.append(vals), out_p.append(np_), out_k.append(keep)
    for l, s_ in np.argwhere(space.keep_free):
        nk = keep.copy()
        nk[l, s_] = not nk[l, s_]
        out_v.append(vals), out_p.append(perm), out_k.append(nk)
    if not out_v:
        return one
    return space._assemble(np.stack(out_v), np.stack(out_p), np.stack(out_k))


@pytest.mark.parametrize("template,dataflow", [("eyeriss_like", None), ("eyeriss_like", "weight-stationary"),
                                               ("eyeriss_like", "output-stationary"), ("tpu_like", None),
                                               ("simba_like", None)])
def test_neighbors_equal_the_one_copy_per_neighbour_loop(template, dataflow):
    arch = load_architecture(template)
    layers = load_layers(REPO / "specs/workloads/mobilenet_v3_large.yaml")
    works = list({l.work.key(): l.work for l in layers}.values())[:8]
    rng = np.random.default_rng(5)
    checked = 0
    for w in works:
        space = MapSpace(arch, w, dataflow_constraints(arch, w, dataflow))
        batch = space.sample_filled(6, rng)
        for i in range(len(batch)):
            for max_orders in (720, 5):
                got, want = space.neighbors(batch[i:i + 1], max_orders), neighbors_loop(space, batch[i:i + 1], max_orders)
                for f in ("tf", "sx", "sy", "perm", "keep"):
                    a, b = getattr(got, f), getattr(want, f)
                    assert a.dtype == b.dtype and a.shape == b.shape and (a == b).all(), (w.name, i, f)
                checked += len(got)
    assert checked > 1000


def test_cached_cdf_draws_equal_generator_choice():
    for seed in range(300):
        g = np.random.default_rng(seed + 10_000)
        k, n = int(g.integers(1, 12)), int(g.integers(0, 400))
        w = g.random(k) * (g.random(k) < 0.8) + 1e-3 * g.random(k)      # uneven, some tiny weights
        a, b = np.random.default_rng(seed), np.random.default_rng(seed)
        want = a.choice(k, size=n, p=w / w.sum())
        got = _choice(b, n, _cdf(w))
        assert got.dtype == want.dtype and (got == want).all()
        assert (a.random(4) == b.random(4)).all()                    # the same state after


def test_first_distinct_keys_equal_numpy_unique():
    from accelerators.mapper import _first_distinct, _rows_key
    arch = load_architecture("eyeriss_like")
    w = load_layers(REPO / "specs/workloads/mobilenet_v3_large.yaml")[3].work
    space = MapSpace(arch, w, dataflow_constraints(arch, w))
    rng = np.random.default_rng(2)
    for _ in range(20):
        b = space.sample(int(rng.integers(1, 300)), rng)
        b = b[rng.integers(0, len(b), len(b) + 50)]                    # many repeated rows
        keys = _rows_key(b)
        assert (_first_distinct(keys) == np.unique(keys, return_index=True)[1]).all()
