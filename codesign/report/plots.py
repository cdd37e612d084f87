"""Figures of a run directory (matplotlib, Agg backend; PNG and/or SVG).

Search run (``codesign search``):

* ``pareto``: accuracy against latency and against energy, colour = the third metric; every
  evaluated design faint, the Pareto front highlighted, the chosen design starred;
* ``hypervolume``: hypervolume of the front per generation;
* ``design_<id>_energy``: per-layer energy of one design split by storage level and MACs, and
  per-layer latency (default design: the front design with the lowest EDP).

Sweep (``codesign sweep``):

* ``sweep_edp_heatmap``: EDP over PE array x by y, one row of panels per network, one column
  per bit-width (or global-buffer size), the best over the other swept parameters in each cell;
* ``sweep_energy_latency``: energy against latency of every configuration, per network, with
  each network's energy-latency Pareto front.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from accelerators.errors import SpecError

PLOT_FORMATS = ("png", "svg", "pdf")
ACCURACY_LABELS = {"predictor": "top-1 accuracy, predicted (%)", "measured": "top-1 accuracy, measured (%)",
                   "naswot": "NASWOT score (accuracy proxy)",
                   "macs": "accuracy proxy: 10 log10(MACs) - bits penalty"}
METRIC_LABELS = {"latency_ms": "latency per image (ms)", "energy_uj": "energy per image (uJ)",
                 "edp_uj_ms": "EDP (uJ x ms)", "area_mm2": "area (mm$^2$)", "top1_pct": "top-1 (%)"}
OBJ_UNITS = {"accuracy": "%", "latency": "ms", "energy": "uJ", "edp": "uJ ms", "area": "mm2"}


def parse_formats(text) -> tuple:
    fmts = tuple(f.strip().lower().lstrip(".") for f in (text.split(",") if isinstance(text, str) else text) if f.strip())
    if not fmts:
        raise SpecError("--format", "give one or more of png, svg, pdf (comma separated)")
    for f in fmts:
        if f not in PLOT_FORMATS:
            raise SpecError("--format", f"unknown figure format {f!r} (one or more of {', '.join(PLOT_FORMATS)})")
    return fmts


def _norm(values):
    """Log colour scale when the values span more than a decade, else linear."""
    from matplotlib.colors import LogNorm, Normalize
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    if not len(v):
        return Normalize(0, 1)
    lo, hi = float(v.min()), float(v.max())
    if hi <= lo:
        hi = lo * 1.0001 + 1e-12
    if lo > 0 and hi / lo > 10:
        return LogNorm(lo, hi)
    return Normalize(lo, hi)


def _colorbar(fig, mappable, ax, label, **kw):
    from matplotlib.ticker import FuncFormatter
    cb = fig.colorbar(mappable, ax=ax, **kw)
    cb.set_label(label)
    cb.ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:.3g}"))
    cb.ax.yaxis.set_minor_formatter(FuncFormatter(lambda v, _: ""))
    return cb


def _plt():
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def _save(fig, outdir: Path, stem: str, formats) -> list[Path]:
    paths = []
    for f in formats:
        p = outdir / f"{stem}.{f}"
        fig.savefig(p, dpi=130, bbox_inches="tight")
        paths.append(p)
    _plt().close(fig)
    return paths


def plot_dir(directory, outdir=None, design=None, formats=("png",), log=print, cache=None,
             details=None) -> list[Path]:
    """Every figure of a search or sweep directory into ``outdir`` (default ``DIR/plots``).
    ``cache``: a ``MappingCache`` holding the run's mappings (a serial search's own, right after
    it ran): the per-layer energy figure's design is looked up there, not mapped again;
    ``details``: the compressed breakdowns a worker run's tasks sent (``SearchResult.layer_details``),
    used as they are."""
    from codesign.rundir.base import run_kind
    formats = parse_formats(formats)
    kind = run_kind(directory)
    out = Path(outdir) if outdir else Path(directory) / "plots"
    if out.exists() and not out.is_dir():
        raise SpecError("--out", "exists and is not a directory", str(out))
    if kind == "sweep":
        if design is not None:
            raise SpecError("--design", "only for a search run (this is a sweep directory)", str(directory))
        from codesign.report.tables import sweep_table
        df = sweep_table(directory)
        out.mkdir(parents=True, exist_ok=True)
        return plot_sweep(df, out, formats)
    return plot_search(directory, out, design, formats, log=log, cache=cache, details=details)


# ---------------------------------------------------------------------------------------------- search runs

def plot_search(directory, out: Path, design=None, formats=("png",), log=print, cache=None,
                details=None) -> list[Path]:
    from codesign.report.design import best_edp_id, evaluate_design, find_row
    from codesign.rundir.search import load_run
    cfg, res = load_run(directory)
    if design is not None:
        find_row(res, design)                    # a bad id fails before anything is drawn
    chosen = int(design) if design is not None else best_edp_id(res)
    out.mkdir(parents=True, exist_ok=True)
    source = cfg["evaluator"]["accuracy"]["source"]
    from codesign.space.joint import space_from_dict
    space = space_from_dict(cfg["evaluator"]["space"], cfg["evaluator"].get("space_name", "space"))
    from codesign.rundir.search import _measurements
    measured, _ = _measurements(Path(directory))
    paths = pareto_figure(res, out, formats, source, chosen, constraints=space.constraints, measured=measured)
    paths += hypervolume_figure(res, cfg, out, formats)
    if chosen is not None and details and chosen in details:      # sent by the run's workers
        from codesign.report.breakdown import unpack
        row = find_row(res, chosen)
        paths += design_energy_figure(row, row["metrics"], unpack(details[chosen]), out, formats)
    elif chosen is not None:
        from codesign.report.breakdown import layer_breakdown
        d = evaluate_design(directory, chosen, cache=cache)
        paths += design_energy_figure(d["row"], d["metrics"], layer_breakdown(d["arch"], d["network"]), out, formats)
    else:
        log("note: no design with metrics in this run: no per-layer energy figure")
    return paths


def _ok_rows(rows):
    return [r for r in rows if r["metrics"].get("latency_ms") is not None]


INFEASIBLE_MARKERS = "xP^vD<>*"
INFEASIBLE_COLORS = ("tab:red", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive", "tab:cyan")


def infeasible_groups(rows, constraints) -> dict:
    """{"area_mm2" / "area_mm2 + min_accuracy": [rows]}: the infeasible rows grouped by the
    constraints they break (``codesign.search.problem.violated_constraints``; "unknown" for a row
    with a violation but no constraint of ``constraints`` broken, e.g. a changed space)."""
    from codesign.search.problem import violated_constraints
    groups: dict = {}
    for r in rows:
        if r["metrics"]["violation"] > 0:
            key = violated_constraints(constraints, r["metrics"]).replace(";", " + ") or "unknown constraint"
            groups.setdefault(key, []).append(r)
    return dict(sorted(groups.items()))


def _constraint_label(key: str, constraints) -> str:
    limits = dict(constraints)
    parts = []
    for k in key.split(" + "):
        if k not in limits:
            parts.append(k)
        elif k == "min_accuracy":
            parts.append(f"accuracy < {limits[k]:g}")
        else:
            parts.append(f"{k} > {limits[k]:g}")
    return " and ".join(parts)


def pareto_figure(res, out: Path, formats, source: str, chosen=None, constraints=(), measured=None) -> list[Path]:
    """``constraints``: the space's ((key, limit), ...); infeasible designs get one marker and
    legend entry per combination of constraints they break. ``measured`` {(key, bits): top-1}
    (``codesign.rundir.verify``): front designs re-measured on the supernet are drawn at their
    measured accuracy too, joined to the search's figure by a line."""
    plt = _plt()
    rows = _ok_rows(res.rows)
    front = _ok_rows(res.front())
    front_ids = {r["id"] for r in front}
    fig, axes = plt.subplots(1, 2, figsize=(13, 5.2))
    ylabel = ACCURACY_LABELS.get(source, "accuracy")
    get = lambda rs, k: np.array([r["metrics"][k] for r in rs], float)
    for ax, (xk, ck) in zip(axes, (("latency_ms", "energy_uj"), ("energy_uj", "latency_ms"))):
        rest = [r for r in rows if r["id"] not in front_ids]
        feas = [r for r in rest if r["metrics"]["violation"] <= 0]
        infeas = [r for r in rest if r["metrics"]["violation"] > 0]
        if feas:
            ax.scatter(get(feas, xk), get(feas, "top1_pct"), s=14, c="0.6", alpha=0.45, lw=0,
                       label=f"dominated ({len(feas)})")
        for k, (key, group) in enumerate(infeasible_groups(infeas, constraints).items()):
            ax.scatter(get(group, xk), get(group, "top1_pct"), s=20, c=INFEASIBLE_COLORS[k % len(INFEASIBLE_COLORS)],
                       alpha=0.55, marker=INFEASIBLE_MARKERS[k % len(INFEASIBLE_MARKERS)], lw=1,
                       label=f"infeasible: {_constraint_label(key, constraints)} ({len(group)})")
        if front:
            cv = get(front, ck)
            sc = ax.scatter(get(front, xk), get(front, "top1_pct"), s=46, c=cv, cmap="viridis", norm=_norm(cv),
                            edgecolors="k", linewidths=0.6, zorder=3, label=f"Pareto front ({len(front)})")
            _colorbar(fig, sc, ax, METRIC_LABELS[ck] + " (front)", pad=0.02)
            meas = [(r, measured[(r.get("key"), int(r["genome"]["hw"]["bits"]))]) for r in front
                    if measured and (r.get("key"), int(r["genome"]["hw"]["bits"])) in measured]
            if meas:
                mx = np.array([r["metrics"][xk] for r, _ in meas], float)
                my = np.array([m for _, m in meas], float)
                py = np.array([r["metrics"]["top1_pct"] for r, _ in meas], float)
                ax.vlines(mx, np.minimum(my, py), np.maximum(my, py), colors="0.3", linewidths=0.7, zorder=2)
                ax.scatter(mx, my, s=40, marker="^", facecolors="none", edgecolors="k", linewidths=1.0, zorder=3,
                           label=f"front, measured on the validation split ({len(meas)})")
        if chosen is not None:
            c = [r for r in rows if r["id"] == chosen]
            if c:
                ax.scatter(get(c, xk), get(c, "top1_pct"), s=240, marker="*", facecolors="none",
                           edgecolors="tab:red", linewidths=1.5, zorder=4, label=f"design {chosen} (lowest EDP)"
                           if chosen == _lowest_edp(front) else f"design {chosen}")
        xs = get(rows, xk)
        if len(xs) and xs.min() > 0 and xs.max() / xs.min() > 20:
            ax.set_xscale("log")
        ax.set_xlabel(METRIC_LABELS[xk])
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="best", framealpha=0.85)
    failed = len(res.rows) - len(rows)
    fig.suptitle(f"Co-search: {len(res.rows)} designs{f' ({failed} failed to map)' if failed else ''}, "
                 f"objectives {', '.join(res.objectives)}; colour = the third metric (front only)", fontsize=11)
    fig.tight_layout()
    return _save(fig, out, "pareto", formats)


def _lowest_edp(front):
    ok = [r for r in front if r["metrics"].get("edp_uj_ms") is not None]
    return min(ok, key=lambda r: (r["metrics"]["violation"] > 0, r["metrics"]["edp_uj_ms"]))["id"] if ok else None


def hypervolume_figure(res, cfg, out: Path, formats) -> list[Path]:
    plt = _plt()
    from codesign.space.joint import space_from_dict
    fig, ax = plt.subplots(figsize=(7, 4.2))
    if res.hypervolume:
        g, n, hv = zip(*res.hypervolume)
        ax.plot(g, hv, "o-", color="tab:blue", ms=4)
        last = n[-1] - (n[-2] if len(n) > 1 else 0)          # candidates of the last generation
        partial = bool(cfg.get("population")) and last < cfg["population"]
        if partial:                                           # cut short by the budget: not a whole step
            ax.plot(g[-1:], hv[-1:], "o", mfc="white", color="tab:blue", ms=6)
        for gi, ni, hi in list(zip(g, n, hv))[-1:]:
            what = f" (last generation partial: {last} of {cfg['population']})" if partial else ""
            ax.annotate(f"{ni} evaluations{what}", (gi, hi), textcoords="offset points", xytext=(-4, -14),
                        ha="right", fontsize=8)
        ax.set_ylim(bottom=0, top=max(max(hv) * 1.08, 1e-12))
        if len(g) < 15:
            ax.set_xticks(list(g))
    space = space_from_dict(cfg["evaluator"]["space"], cfg["evaluator"].get("space_name", "space"))
    ref = dict(space.reference)
    units = " x ".join(OBJ_UNITS.get(o, "") for o in res.objectives)
    ax.set_xlabel("generation")
    ax.set_ylabel(f"hypervolume ({units})")
    ax.set_title(f"Hypervolume per generation ({cfg['algorithm']})\nreference: "
                 + ", ".join(f"{o} {ref.get(o):g} {OBJ_UNITS.get(o, '')}" for o in res.objectives), fontsize=10)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, out, "hypervolume", formats)


def design_energy_figure(row: dict, metrics: dict, breakdown: dict, out: Path, formats) -> list[Path]:
    """Per-layer energy stacked by storage level and MACs, and per-layer latency, of one design:
    ``breakdown`` as ``codesign.report.breakdown.layer_breakdown`` gives it (mapped here, or sent
    by the run's worker processes)."""
    plt = _plt()
    names = breakdown["layers"]
    n = len(names)
    parts = breakdown["energy_uj"]                       # {level or "MAC": [uJ per layer]}
    total = max(float(breakdown["total_energy_uj"]), 1e-30)
    cmap = plt.get_cmap("tab10")
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(max(9, 0.2 * n + 3), 7.5), sharex=True,
                                   gridspec_kw={"height_ratios": [2, 1]})
    x = np.arange(n)
    bottom = np.zeros(n)
    for k, name in enumerate(parts):
        vals = np.array([0.0 if v is None else v for v in parts[name]], float)
        tot = vals.sum()
        ax1.bar(x, vals, bottom=bottom, color=cmap(k % 10), width=0.85,
                label=f"{name} ({tot:.3g} uJ, {100 * tot / total:.0f}%)")
        bottom += vals
    ax1.set_ylabel("energy per layer (uJ)")
    ax1.legend(fontsize=8, ncol=3, loc="upper right", title="storage level / MACs (total, share)",
               title_fontsize=8)
    ax1.grid(axis="y", alpha=0.3)
    hw = row["genome"]["hw"]
    m = metrics
    ax1.set_title(f"Design {row['id']}: {hw['pe_x']}x{hw['pe_y']} PEs, {hw['bits']}-bit, {hw['dataflow']}, "
                  f"{hw['dram_type']}; r={row['genome']['net']['r']}, {n} layers\n"
                  f"energy {m['energy_uj']:.4g} uJ, latency {m['latency_ms']:.4g} ms, EDP {m['edp_uj_ms']:.4g} uJ ms, "
                  f"area {m['area_mm2']:.3g} mm$^2$", fontsize=10)
    ax2.bar(x, np.array(breakdown["latency_us"], float), color="tab:gray", width=0.85)
    ax2.set_ylabel(f"latency per layer (us)\nat {breakdown['clock_ghz']:g} GHz")
    ax2.grid(axis="y", alpha=0.3)
    ax2.set_xticks(x)
    ax2.set_xticklabels(names, rotation=90, fontsize=7 if n > 40 else 8)
    ax2.set_xlim(-0.6, n - 0.4)
    fig.tight_layout()
    return _save(fig, out, f"design_{row['id']}_energy", formats)


# ---------------------------------------------------------------------------------------------- sweeps

def _facet(df):
    """The column that splits the heat-maps into panels: bits, else the global-buffer size, else
    nothing."""
    for col in ["hw_bits"] + [c for c in df.columns if c.startswith("hw_size_") and "Global" in c] + \
               [c for c in df.columns if c.startswith("hw_size_")]:
        if col in df.columns and df[col].nunique() > 1:
            return col
    return None


def _facet_label(col, v):
    if col is None:
        return ""
    if col == "hw_bits":
        return f"{int(v)}-bit"
    return f"{col[len('hw_size_'):-len('_kib')]} {v:g} KiB"


def plot_sweep(df, out: Path, formats=("png",)) -> list[Path]:
    ok = df
    if "status" in df.columns:
        ok = df[df["status"].astype(str) == "ok"]
    ok = ok[np.isfinite(ok["latency_ms"].astype(float)) & np.isfinite(ok["energy_uj"].astype(float))].copy()
    if not len(ok):
        raise SpecError("results.csv", "no successful configuration to plot")
    if "edp_uj_ms" not in ok.columns:
        ok["edp_uj_ms"] = ok["energy_uj"] * ok["latency_ms"]
    if "network" not in ok.columns:
        ok["network"] = "network"
    return sweep_heatmap(ok, out, formats) + sweep_scatter(ok, out, formats)


COLUMN_LABELS = {"hw_dataflow": "dataflow", "hw_dram_type": "DRAM type", "hw_dram_bw": "DRAM bandwidth",
                 "hw_bits": "bits", "hw_pe_x": "pe_x", "hw_pe_y": "pe_y"}


def _col_label(c):
    if c.startswith("hw_size_") and c.endswith("_kib"):
        return f"{c[len('hw_size_'):-len('_kib')]} size"
    return COLUMN_LABELS.get(c, c)


def sweep_heatmap(df, out: Path, formats) -> list[Path]:
    plt = _plt()
    nets = list(dict.fromkeys(df["network"]))
    facet = _facet(df)
    fvals = sorted(df[facet].unique()) if facet else [None]
    xs, ys = sorted(df["hw_pe_x"].unique()), sorted(df["hw_pe_y"].unique())
    varied = [c for c in df.columns if c.startswith("hw_") and c not in ("hw_pe_x", "hw_pe_y", facet)
              and df[c].nunique() > 1]
    w = min(4.8, 1.6 + 0.5 * len(xs))
    h = min(4.2, 1.4 + 0.4 * len(ys))
    fig, axes = plt.subplots(len(nets), len(fvals), figsize=(w * len(fvals) + 1.4, h * len(nets) + 0.9),
                             squeeze=False, layout="constrained")
    for i, net in enumerate(nets):
        sub = df[df["network"] == net]
        grids = []
        for fv in fvals:
            part = sub if facet is None else sub[sub[facet] == fv]
            grid = np.full((len(ys), len(xs)), np.nan)
            for (py, px), v in part.groupby(["hw_pe_y", "hw_pe_x"])["edp_uj_ms"].min().items():
                grid[ys.index(py), xs.index(px)] = v
            grids.append(grid)
        norm = _norm(np.concatenate([g.ravel() for g in grids]))      # one scale per network
        im = None
        for j, (fv, grid) in enumerate(zip(fvals, grids)):
            ax = axes[i][j]
            im = ax.imshow(np.ma.masked_invalid(grid), origin="lower", cmap="viridis_r", norm=norm, aspect="auto")
            if len(xs) * len(ys) <= 64:
                for (a, b), v in np.ndenumerate(grid):
                    if np.isfinite(v):
                        ax.text(b, a, f"{v:.3g}", ha="center", va="center", fontsize=7,
                                color="w" if norm(v) > 0.55 else "k")
            ax.set_xticks(range(len(xs)))
            ax.set_xticklabels([f"{v:g}" for v in xs], fontsize=8)
            ax.set_yticks(range(len(ys)))
            ax.set_yticklabels([f"{v:g}" for v in ys], fontsize=8)
            if i == len(nets) - 1:
                ax.set_xlabel("PE array x (pe_x)")
            if j == 0:
                ax.set_ylabel(f"{net}\nPE array y (pe_y)")
            ax.set_title(f"{net}" + (f", {_facet_label(facet, fv)}" if facet else ""), fontsize=10)
        if im is not None:
            _colorbar(fig, im, list(axes[i]), f"EDP, {net} (uJ x ms)", pad=0.01)
    note = f"; each cell the best over {', '.join(_col_label(c) for c in varied)}" if varied else ""
    fig.suptitle(f"Sweep: EDP per image over the PE array (lower is better{note})", fontsize=11)
    return _save(fig, out, "sweep_edp_heatmap", formats)


def _pareto_2d(x, y):
    order = np.lexsort((y, x))
    keep, best = [], math.inf
    for i in order:
        if y[i] < best:
            keep.append(i)
            best = y[i]
    return np.array(keep, int)


def sweep_scatter(df, out: Path, formats) -> list[Path]:
    plt = _plt()
    nets = list(dict.fromkeys(df["network"]))
    cmap = plt.get_cmap("tab10")
    df_col = "hw_dataflow" if "hw_dataflow" in df.columns and df["hw_dataflow"].nunique() > 1 else None
    markers = "osD^vP*Xh<>"
    mk = {v: markers[k % len(markers)] for k, v in enumerate(sorted(df[df_col].unique()))} if df_col else {}
    fig, ax = plt.subplots(figsize=(8, 5.5))
    size = 18 if len(df) > 60 else 36
    for i, net in enumerate(nets):
        sub = df[df["network"] == net]
        col = cmap(i % 10)
        if df_col:
            for v, m in mk.items():
                s = sub[sub[df_col] == v]
                if len(s):
                    ax.scatter(s["latency_ms"], s["energy_uj"], s=size, color=col, marker=m, alpha=0.55, lw=0)
        else:
            ax.scatter(sub["latency_ms"], sub["energy_uj"], s=size, color=col, alpha=0.55, lw=0)
        x, y = sub["latency_ms"].to_numpy(float), sub["energy_uj"].to_numpy(float)
        f = _pareto_2d(x, y)
        ax.plot(x[f], y[f], "-o", color=col, lw=1.5, ms=9, mfc="none", mew=1.2,
                label=f"{net}: {len(sub)} configs, Pareto front circled")
    if len(df) <= 16:                                   # few points: say which configuration each is
        shown = [c for c in df.columns if c.startswith("hw_") and c not in ("hw_pe_x", "hw_pe_y")
                 and df[c].nunique() > 1]
        for _, r in df.iterrows():
            text = f"{r['hw_pe_x']:g}x{r['hw_pe_y']:g}" + "".join(
                f", {int(r[c])}b" if c == "hw_bits" else f", {r[c]}" for c in shown)
            ax.annotate(text, (r["latency_ms"], r["energy_uj"]), textcoords="offset points", xytext=(7, 4), fontsize=7)
    if df_col:
        for v, m in mk.items():
            ax.scatter([], [], color="0.3", marker=m, label=f"dataflow: {v}")
    lat, en = df["latency_ms"].astype(float), df["energy_uj"].astype(float)
    if lat.min() > 0 and lat.max() / lat.min() > 20:
        ax.set_xscale("log")
    if en.min() > 0 and en.max() / en.min() > 20:
        ax.set_yscale("log")
    ax.set_xlabel(METRIC_LABELS["latency_ms"])
    ax.set_ylabel(METRIC_LABELS["energy_uj"])
    ax.set_title(f"Sweep: energy against latency ({len(df)} configurations)", fontsize=11)
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="best")
    fig.tight_layout()
    return _save(fig, out, "sweep_energy_latency", formats)
