"""An interactive report of a run directory: one self-contained HTML file (plotly, with
plotly.js embedded: no network access needed to open it).

Search run (``codesign search``):

* the Pareto front in 2-D (accuracy against latency and against energy) and 3-D (accuracy,
  latency, energy); every evaluated design is a point, the front highlighted, infeasible designs
  marked with an ``x`` per constraint they break; the hover shows a design's genome (compact),
  hardware, metrics and accuracy (measured where the run has a measured column, else the run's
  accuracy source, and says which);
* clicking a design fills a detail panel: its per-layer latency and energy (split by storage
  level and MACs) and its energy per level, mapped again at report time
  (:func:`codesign.report.design.design_network`) for the front designs and embedded as JSON;
* the hypervolume over evaluations (``hypervolume.csv``);
* a sortable table of the front (click a header to sort, a row to show the design).

Sweep (``codesign sweep``): energy against latency and EDP against area of every configuration
(per network, with each network's energy-latency front), a sortable table of ``results.csv`` and,
on click, the per-layer latency and energy of a configuration (``layers.csv``).

``write_report(DIR, out=None)`` writes ``DIR/report.html`` (or ``out``); torch is never imported.
"""
from __future__ import annotations

import html
import json
import math
from dataclasses import dataclass
from pathlib import Path

from accelerators.errors import SpecError

from codesign.jsonio import plain_value
from codesign.report.breakdown import clean as _clean, layer_breakdown  # noqa: F401  (layer_breakdown: public here too)

REPORT_FILE = "report.html"
MAX_DETAIL_DESIGNS = 40          # front designs whose per-layer breakdown is mapped and embedded
MEASURED_COLUMNS = ("top1_measured_pct", "top1_measured", "measured_top1_pct", "measured_top1")
CONSTRAINT_UNITS = {"area_mm2": "mm2", "onchip_kib": "KiB", "latency_ms": "ms", "energy_uj": "uJ", "min_accuracy": "%"}
CONSTRAINT_COLORS = ("#d62728", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#bcbd22", "#17becf")
NETWORK_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                  "#bcbd22", "#17becf")
PLOT_CONFIG = {"displaylogo": False, "responsive": True}
LOG_SPAN = 20.0                  # an axis whose values span more than this factor is logarithmic


@dataclass(frozen=True)
class AccuracySource:
    """Which accuracy a report shows: ``column`` (per design, ``measured_column`` where it has a
    value), its axis ``label`` and ``kind`` (measured / predicted / proxy score)."""
    column: str
    kind: str
    label: str
    measured_column: str | None = None


@dataclass(frozen=True)
class ConstraintBreak:
    """One constraint a design breaks: its key, the design's value, the limit (units in UNITS)."""
    key: str
    value_units: float
    limit_units: float

    @property
    def text(self) -> str:
        unit = CONSTRAINT_UNITS.get(self.key, "")
        if self.key == "min_accuracy":
            return f"min_accuracy: top-1 {self.value_units:.4g} % < {self.limit_units:g} %"
        return f"{self.key}: {self.value_units:.4g} > {self.limit_units:g} {unit}"


# ---------------------------------------------------------------------------------------------- pure helpers

def accuracy_source(columns, source: str) -> AccuracySource:
    """The accuracy a search report shows: a measured column of the run where there is one, else
    ``top1_pct`` labelled by the run's accuracy source."""
    measured = next((c for c in MEASURED_COLUMNS if c in columns), None)
    if measured is not None:         # designs without a measured value keep the run's own kind
        base = accuracy_source((), source)
        return AccuracySource("top1_pct", base.kind, f"top-1 accuracy (%): measured where re-measured, else "
                              f"{base.kind}", measured)
    if source == "measured":
        return AccuracySource("top1_pct", "measured", "top-1 accuracy, measured on the supernet (%)")
    if source == "predictor":
        return AccuracySource("top1_pct", "predicted", "top-1 accuracy, predicted (%)")
    return AccuracySource("top1_pct", "proxy score", f"accuracy proxy ({source})")


def constraint_breaks(constraints, metrics: dict) -> tuple:
    """The ConstraintBreaks of a design's metrics (empty when feasible or without metrics)."""
    from codesign.search.problem import CONSTRAINT_COLUMNS, constraint_excesses
    if not metrics or metrics.get("latency_ms") is None or metrics.get("top1_pct") is None:
        return ()
    limits = dict(constraints)
    out = []
    for key, excess in constraint_excesses(constraints, metrics):
        if excess > 0:
            value = metrics["top1_pct"] if key == "min_accuracy" else metrics[CONSTRAINT_COLUMNS[key]]
            out.append(ConstraintBreak(key, float(value), float(limits[key])))
    return tuple(out)


def compact_net(net: dict) -> str:
    """``r=32 d=2342 ks=35/577/... e=46/336/...``: one digit per active block, stages split by ``/``
    (a stage's slots beyond its depth ``d`` are inactive and left out)."""
    depths = [int(v) for v in net.get("d", [])]

    def blocks(values):
        vals = [str(v) for v in values]
        if depths and len(vals) % len(depths) == 0 and len(vals) >= max(depths) * len(depths):
            per = len(vals) // len(depths)
            return "/".join("".join(vals[s * per: s * per + d]) for s, d in enumerate(depths))
        return "".join(vals)
    return f"r={net.get('r')} d={''.join(map(str, depths))} ks={blocks(net.get('ks', []))} e={blocks(net.get('e', []))}"


def compact_hw(hw: dict) -> str:
    sizes = hw.get("sizes_kib") or {}
    mem = ", ".join(f"{lv} {_num(v)}" for lv, v in sizes.items())
    return (f"{hw.get('pe_x')}x{hw.get('pe_y')} PEs, {hw.get('bits')}-bit, {hw.get('dataflow')}, "
            f"{hw.get('dram_type')} {hw.get('dram_bw')} words/cycle" + (f"; KiB: {mem}" if mem else ""))


def _num(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "-"
    if isinstance(v, float):
        return f"{v:.4g}"
    return str(v)


def _axis_type(values) -> str:
    vals = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    if vals and min(vals) > 0 and max(vals) / min(vals) > LOG_SPAN:
        return "log"
    return "linear"


def _script_json(data) -> str:
    """JSON safe inside a <script> element."""
    text = json.dumps(data, default=plain_value, allow_nan=False, separators=(",", ":"))
    return text.replace("</", "<\\/").replace("<!--", "<\\!--")


# ---------------------------------------------------------------------------------------------- entry point

def write_report(directory, out=None, *, max_details: int = MAX_DETAIL_DESIGNS, log=print, cache=None,
                 workers: int = 1, details: dict | None = None) -> Path:
    """Write the report of a search or sweep directory to ``out`` (default ``DIR/report.html``);
    returns its path. ``cache``: a ``MappingCache`` that already holds the run's mappings (the
    search's own, right after it ran): the per-layer breakdowns are then looked up, not mapped.
    ``workers`` > 1 (and no ``cache``): the front designs are mapped in that many processes.
    ``details``: {design id: compressed breakdown} sent by the run's workers
    (``codesign.search.problem.evaluate_candidate_detailed``): those designs are not mapped again."""
    from codesign.rundir.base import run_kind
    kind = run_kind(directory)
    path = Path(out) if out else Path(directory) / REPORT_FILE
    if path.is_dir():
        raise SpecError("--out", "is a directory (give a file name)", str(path))
    if isinstance(max_details, bool) or not isinstance(max_details, int) or max_details < 0:
        raise SpecError("--max-details", f"must be an integer >= 0, got {max_details!r}")
    text = sweep_report(directory) if kind == "sweep" else search_report(directory, max_details=max_details, log=log, cache=cache,
                                                                         workers=workers, details=details)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


# ---------------------------------------------------------------------------------------------- search runs

def search_report(directory, *, max_details: int = MAX_DETAIL_DESIGNS, log=print, cache=None,
                  workers: int = 1, details: dict | None = None) -> str:
    """The HTML text of a search run's report."""
    from codesign.rundir.search import load_run
    from codesign.search.algorithms import front_table
    from codesign.space.joint import space_from_dict
    d = Path(directory)
    cfg, res = load_run(d)
    ev_cfg = cfg["evaluator"]
    space = space_from_dict(ev_cfg["space"], ev_cfg.get("space_name", "space"))
    from codesign.rundir.search import _measurements
    measured, _ = _measurements(d)              # front designs re-measured (codesign verify / search --data)

    def with_measured(r):
        k = (r.get("key"), int(r["genome"]["hw"]["bits"]))
        return dict(r, metrics={**r["metrics"], "top1_measured": measured[k]}) if k in measured else r
    rows = [with_measured(r) for r in res.rows]
    front = res.front()
    front_ids = {r["id"] for r in front}
    table = front_table(rows)
    acc = accuracy_source(table.columns, ev_cfg["accuracy"]["source"])
    designs = {r["id"]: design_record(r, space.constraints, acc, r["id"] in front_ids) for r in rows}
    details, detail_note = front_details(space, ev_cfg, front, max_details, log=log, cache=cache,
                                        workers=workers, sent=details)
    hv = hypervolume_table(d, res)
    ok = [r for r in rows if designs[r["id"]]["ok"]]
    infeasible = [r for r in ok if designs[r["id"]]["infeasible"]]
    failed = len(rows) - len(ok)
    cost_note = ("latency and energy of the run: predicted by the learned cost predictor; the per-layer "
                 "breakdown is the mapped model's" if ev_cfg.get("cost_predictor") else
                 "latency and energy: the accelerator model, every layer mapped")
    cons = ", ".join(f"{k} {'>=' if k == 'min_accuracy' else '<='} {v:g} {CONSTRAINT_UNITS.get(k, '')}"
                     for k, v in space.constraints) or "none"
    summary = [("run", str(d.resolve())), ("algorithm", f"{cfg['algorithm']} (budget {cfg['budget']}, population "
                                                         f"{cfg['population']}, seed {cfg['seed']})"),
               ("objectives", ", ".join(res.objectives)), ("space", str(ev_cfg.get("space_name", "space"))),
               ("accuracy", f"{acc.label}: source {ev_cfg['accuracy']['source']}"
                + (f", measured where {acc.measured_column} has a value" if acc.measured_column else "")),
               ("cost", cost_note), ("constraints", cons),
               ("designs", f"{len(rows)} evaluated: {len(front)} on the front, {len(infeasible)} infeasible, "
                           f"{failed} failed to map"),
               ("per-layer detail", detail_note)]
    figs = [("Pareto front (2-D)", "pareto-2d", pareto_2d_figure(ok, designs, front_ids, acc),
             "Every evaluated design; the front highlighted (colour: energy), infeasible designs marked x by the "
             "constraint they break. Hover for a design, click it for its per-layer breakdown."),
            ("Pareto front (3-D)", "pareto-3d", pareto_3d_figure(ok, designs, front_ids, acc),
             "Accuracy, latency and energy; infeasible designs as diamonds; drag to rotate, click a design for "
             "its breakdown."),
            ("Hypervolume over evaluations", "hypervolume", hypervolume_figure(hv),
             f"Hypervolume of the feasible front after each generation; objectives {', '.join(res.objectives)}, "
             "reference point " + ", ".join(f"{o} {v:g}" for o, v in space.reference if o in res.objectives) + ".")]
    front_df = front_table_frame(front, designs, acc)
    return render_page(f"codesign report: search {d.name}", summary, figs, front_df,
                       table_title=f"Pareto front ({len(front)} designs; click a header to sort, a row to show it)",
                       data={"kind": "search", "designs": designs, "details": details, "detailNote": detail_note})


def design_record(row: dict, constraints, acc: AccuracySource, on_front: bool) -> dict:
    """What the page knows about one evaluated design (JSON-ready)."""
    m = row["metrics"] or {}
    g = row["genome"]
    ok = m.get("latency_ms") is not None and m.get("top1_pct") is not None
    measured = m.get(acc.measured_column) if acc.measured_column else None
    if measured is not None and isinstance(measured, float) and not math.isfinite(measured):
        measured = None
    accuracy = measured if measured is not None else m.get(acc.column)
    kind = "measured" if measured is not None else acc.kind
    breaks = constraint_breaks(constraints, m) if ok else ()
    status = "Pareto front" if on_front else ("infeasible" if breaks else ("failed" if not ok else "dominated"))
    lines = [f"<b>design {row['id']}</b> (generation {row.get('generation')}): {status}",
             f"accuracy ({kind}): {_num(accuracy)}",
             f"latency {_num(m.get('latency_ms'))} ms, energy {_num(m.get('energy_uj'))} uJ, "
             f"EDP {_num(m.get('edp_uj_ms'))} uJ ms",
             f"area {_num(m.get('area_mm2'))} mm2, on-chip {_num(m.get('onchip_kib'))} KiB, "
             f"utilization {_num(m.get('utilization'))}",
             f"hw: {html.escape(compact_hw(g.get('hw', {})))}",
             f"net: {html.escape(compact_net(g.get('net', {})))}"]
    if breaks:
        lines.append("<b>breaks</b> " + "; ".join(html.escape(b.text) for b in breaks))
    if not ok:
        lines.append(f"failed: {html.escape(str(m.get('error') or row.get('error') or 'no metrics'))[:160]}")
    return _clean({"id": row["id"], "ok": ok, "front": on_front, "infeasible": bool(breaks),
                   "violates": ";".join(b.key for b in breaks), "accuracy": accuracy, "accuracy_kind": kind,
                   "metrics": {k: v for k, v in m.items() if not isinstance(v, (dict, list))},
                   "genome": g, "hover": "<br>".join(lines)})


def front_details(space, ev_cfg: dict, front, max_details: int, log=print, cache=None,
                  workers: int = 1, sent: dict | None = None) -> tuple[dict, str]:
    """({design id: per-layer breakdown}, a note saying which designs have one): the front designs
    (the lowest EDP first, at most ``max_details``) mapped again, one shared mapping cache; or,
    with ``workers`` > 1 and no ``cache``, spread over that many processes (the same mappings:
    the mapper is deterministic). ``sent``: {design id: packed breakdown} the run's
    workers computed already (the same figures); those designs are not mapped again."""
    from codesign.report.breakdown import unpack
    from codesign.search.executors import Executor
    ok = [r for r in front if r["metrics"].get("latency_ms") is not None]
    ok.sort(key=lambda r: (r["metrics"]["violation"] > 0, r["metrics"].get("edp_uj_ms") or math.inf))
    chosen = ok[:max_details]
    sent = sent or {}
    have = {r["id"]: (unpack(sent[r["id"]]), None) for r in chosen if r["id"] in sent}
    todo = [r for r in chosen if r["id"] not in have]
    out = {}
    if cache is None and workers > 1 and len(todo) > 1:
        with Executor(workers=min(workers, len(todo))) as ex:
            mapped = ex.map(design_breakdown, [(ev_cfg, r) for r in todo])
    else:
        from accelerators.network import MappingCache
        cache = MappingCache() if cache is None else cache
        mapped = [design_breakdown(ev_cfg, r, space, cache) for r in todo]
    have.update({r["id"]: m for r, m in zip(todo, mapped)})
    found = [have[r["id"]] for r in chosen]
    for r, (breakdown, error) in zip(chosen, found):
        if error is not None:
            log(f"note: design {r['id']}: no per-layer breakdown ({error})")
        else:
            out[r["id"]] = breakdown
    note = (f"per-layer latency and energy of {len(out)} front design(s), every layer mapped with the run's "
            f"mapper budget ({ev_cfg['mapper_budget']})")
    if len(ok) > len(chosen):
        note += f"; the other {len(ok) - len(chosen)} front designs: codesign export DIR --design ID"
    return out, note


def design_breakdown(ev_cfg: dict, row: dict, space=None, cache=None) -> tuple[dict | None, str | None]:
    """(per-layer breakdown, None) of one stored design, every layer mapped as the run mapped it,
    or (None, why) when it cannot be mapped. Module-level, so that a process pool can run it."""
    from accelerators.errors import MappingError

    from codesign.report.design import design_network
    if space is None:
        from codesign.space.joint import space_from_dict
        space = space_from_dict(ev_cfg["space"], ev_cfg.get("space_name", "space"))
    try:
        arch, _, nr = design_network(space, ev_cfg, row, cache)
    except (MappingError, SpecError) as e:
        return None, str(e)
    return layer_breakdown(arch, nr), None


def hypervolume_table(directory: Path, res):
    """``hypervolume.csv`` (generation, evaluations, hypervolume), or the run's own log when the
    file is not there yet (a run still going)."""
    import pandas as pd
    p = Path(directory) / "hypervolume.csv"
    if p.is_file():
        try:
            df = pd.read_csv(p)
            if {"evaluations", "hypervolume"} <= set(df.columns):
                return df
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
            pass
    return pd.DataFrame(res.hypervolume, columns=["generation", "evaluations", "hypervolume"])


def _hover_trace(go, rows, designs, x, y, *, name, uid, marker, z=None):
    kw = dict(x=x, y=y, mode="markers", name=name, uid=uid, marker=marker,
              customdata=[r["id"] for r in rows], hovertext=[designs[r["id"]]["hover"] for r in rows],
              hovertemplate="%{hovertext}<extra></extra>")
    if z is not None:
        return go.Scatter3d(z=z, **kw)
    return go.Scatter(**kw)


def _groups(rows, designs, front_ids):
    dominated = [r for r in rows if r["id"] not in front_ids and not designs[r["id"]]["infeasible"]]
    infeasible = {}
    for r in rows:
        if r["id"] not in front_ids and designs[r["id"]]["infeasible"]:
            infeasible.setdefault(designs[r["id"]]["violates"], []).append(r)
    front = [r for r in rows if r["id"] in front_ids]
    return dominated, infeasible, front


def pareto_2d_figure(rows, designs, front_ids, acc: AccuracySource):
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.08,
                        subplot_titles=("accuracy against latency", "accuracy against energy"))
    dominated, infeasible, front = _groups(rows, designs, front_ids)
    accv = lambda rs: [designs[r["id"]]["accuracy"] for r in rs]
    met = lambda rs, k: [r["metrics"][k] for r in rs]
    for col, (key, tag) in enumerate((("latency_ms", "lat"), ("energy_uj", "en")), start=1):
        first = col == 1
        if dominated:
            t = _hover_trace(go, dominated, designs, met(dominated, key), accv(dominated),
                             name=f"dominated ({len(dominated)})", uid=f"dominated-{tag}",
                             marker=dict(color="rgba(120,120,120,0.45)", size=7))
            fig.add_trace(t.update(legendgroup="dominated", showlegend=first), row=1, col=col)
        for k, (viol, rs) in enumerate(sorted(infeasible.items())):
            t = _hover_trace(go, rs, designs, met(rs, key), accv(rs),
                             name=f"infeasible: {viol.replace(';', ' + ')} ({len(rs)})", uid=f"infeasible{k}-{tag}",
                             marker=dict(symbol="x", size=9, color=CONSTRAINT_COLORS[k % len(CONSTRAINT_COLORS)]))
            fig.add_trace(t.update(legendgroup=f"infeasible{k}", showlegend=first), row=1, col=col)
        if front:
            t = _hover_trace(go, front, designs, met(front, key), accv(front), name=f"Pareto front ({len(front)})",
                             uid=f"front-{tag}",
                             marker=dict(size=12, color=met(front, "energy_uj"), colorscale="Viridis",
                                         line=dict(color="black", width=1),
                                         showscale=first, colorbar=dict(title="energy (uJ)", x=1.02)))
            fig.add_trace(t.update(legendgroup="front", showlegend=first), row=1, col=col)
        fig.update_xaxes(title_text="latency per image (ms)" if key == "latency_ms" else "energy per image (uJ)",
                         type=_axis_type(met(rows, key)), row=1, col=col)
        fig.update_yaxes(title_text=acc.label, row=1, col=col)
    fig.update_layout(height=520, hovermode="closest", legend=dict(orientation="h", y=-0.18),
                      margin=dict(l=60, r=30, t=40, b=40))
    return fig


def pareto_3d_figure(rows, designs, front_ids, acc: AccuracySource):
    import plotly.graph_objects as go
    fig = go.Figure()
    dominated, infeasible, front = _groups(rows, designs, front_ids)
    accv = lambda rs: [designs[r["id"]]["accuracy"] for r in rs]
    met = lambda rs, k: [r["metrics"][k] for r in rs]
    if dominated:
        fig.add_trace(_hover_trace(go, dominated, designs, met(dominated, "latency_ms"), met(dominated, "energy_uj"),
                                   z=accv(dominated), name=f"dominated ({len(dominated)})", uid="dominated-3d",
                                   marker=dict(color="rgba(110,110,110,0.7)", size=4)))
    for k, (viol, rs) in enumerate(sorted(infeasible.items())):
        fig.add_trace(_hover_trace(go, rs, designs, met(rs, "latency_ms"), met(rs, "energy_uj"), z=accv(rs),
                                   name=f"infeasible: {viol.replace(';', ' + ')} ({len(rs)})", uid=f"infeasible{k}-3d",
                                   marker=dict(symbol="diamond", size=5,
                                               color=CONSTRAINT_COLORS[k % len(CONSTRAINT_COLORS)])))
    if front:
        fig.add_trace(_hover_trace(go, front, designs, met(front, "latency_ms"), met(front, "energy_uj"), z=accv(front),
                                   name=f"Pareto front ({len(front)})", uid="front-3d",
                                   marker=dict(size=6, color=met(front, "energy_uj"), colorscale="Viridis",
                                               line=dict(color="black", width=1))))
    fig.update_layout(height=600, margin=dict(l=0, r=0, t=10, b=0), legend=dict(orientation="h"),
                      scene=dict(xaxis=_axis_3d("latency (ms)", met(rows, "latency_ms")),
                                 yaxis=_axis_3d("energy (uJ)", met(rows, "energy_uj")),
                                 zaxis=dict(title=acc.label)))
    return fig


def _axis_3d(title: str, values) -> dict:
    kind = _axis_type(values)
    return dict(title=title, type=kind, **({"dtick": 1} if kind == "log" else {}))     # log: decades only


def hypervolume_figure(hv):
    import plotly.graph_objects as go
    fig = go.Figure()
    if len(hv):
        gens = hv["generation"].tolist() if "generation" in hv.columns else [None] * len(hv)
        fig.add_trace(go.Scatter(x=hv["evaluations"].tolist(), y=hv["hypervolume"].tolist(), mode="lines+markers",
                                 name="hypervolume", uid="hypervolume", customdata=gens,
                                 hovertemplate="generation %{customdata}: %{x} evaluations<br>hypervolume %{y:.6g}"
                                               "<extra></extra>"))
    fig.update_layout(height=360, xaxis_title="evaluations", margin=dict(l=60, r=30, t=20, b=40),
                      yaxis_title="hypervolume (feasible front)")
    return fig


def front_table_frame(front, designs, acc: AccuracySource):
    """The front as a DataFrame for the page's table (units in the column names)."""
    import pandas as pd
    recs = []
    for r in front:
        m, g = r["metrics"] or {}, r["genome"]
        hw = g.get("hw", {})
        rec = {"id": r["id"], f"accuracy ({designs[r['id']]['accuracy_kind']})": designs[r["id"]]["accuracy"]}
        for k in ("latency_ms", "energy_uj", "edp_uj_ms", "area_mm2", "onchip_kib", "utilization"):
            rec[k] = m.get(k)
        rec.update({"pe_x": hw.get("pe_x"), "pe_y": hw.get("pe_y"), "bits": hw.get("bits"),
                    "dataflow": hw.get("dataflow"), "dram": f"{hw.get('dram_type')} x{hw.get('dram_bw')}"})
        rec.update({f"{lv}_kib": v for lv, v in (hw.get("sizes_kib") or {}).items()})
        rec["net"] = compact_net(g.get("net", {}))
        rec["violates"] = designs[r["id"]]["violates"]
        recs.append(rec)
    df = pd.DataFrame(recs)
    if len(df) and "latency_ms" in df.columns:
        df = df.sort_values("latency_ms", kind="stable")
    if len(df) and not df["violates"].astype(bool).any():
        df = df.drop(columns=["violates"])
    return df


# ---------------------------------------------------------------------------------------------- sweeps

def sweep_report(directory) -> str:
    """The HTML text of a sweep directory's report."""
    import pandas as pd

    from codesign.report.tables import sweep_table
    d = Path(directory)
    df = sweep_table(d)
    layers_path = d / "layers.csv"
    layers = None
    if layers_path.is_file():
        try:
            layers = pd.read_csv(layers_path)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError):
            layers = None
    if "network" not in df.columns:
        df["network"] = "network"
    if "edp_uj_ms" not in df.columns:
        df["edp_uj_ms"] = df["latency_ms"] * df["energy_uj"]
    status = df["status"].astype(str) if "status" in df.columns else pd.Series(["ok"] * len(df), index=df.index)
    lat = pd.to_numeric(df["latency_ms"], errors="coerce")
    en = pd.to_numeric(df["energy_uj"], errors="coerce")
    ok_mask = (status == "ok") & lat.notna() & en.notna()
    ok = df[ok_mask]
    hw_cols = [c for c in df.columns if c.startswith("hw_")]
    points = {}
    for idx, r in df.iterrows():
        pid = int(r["id"]) if "id" in df.columns else int(idx)
        lines = [f"<b>point {pid}</b>: {html.escape(str(r['network']))}",
                 ", ".join(f"{c[3:]} {html.escape(_num(plain_value(r[c])))}" for c in hw_cols),
                 f"latency {_num(plain_value(r['latency_ms']))} ms, energy {_num(plain_value(r['energy_uj']))} uJ, "
                 f"EDP {_num(plain_value(r['edp_uj_ms']))} uJ ms"]
        if "area_mm2" in df.columns:
            lines.append(f"area {_num(plain_value(r['area_mm2']))} mm2"
                         + (f", utilization {_num(plain_value(r['utilization']))}" if "utilization" in df.columns else ""))
        if str(status.loc[idx]) != "ok":
            lines.append(f"status: {html.escape(str(status.loc[idx]))}")
        points[pid] = _clean({"id": pid, "network": str(r["network"]), "hover": "<br>".join(lines),
                              "row": {c: plain_value(v) for c, v in r.items()}})
    details = {}
    if layers is not None and {"id", "layer", "cycles", "energy_uj"} <= set(layers.columns):
        lat_of = dict(zip(ok["id"].astype(int), ok["latency_ms"].astype(float))) if "id" in ok.columns else {}
        for pid, part in layers.groupby("id"):
            cycles = part["cycles"].astype(float)
            total_ms = lat_of.get(int(pid))
            scale_us = (total_ms * 1e3 / cycles.sum()) if total_ms and cycles.sum() > 0 else None
            details[int(pid)] = _clean({"layers": part["layer"].astype(str).tolist(),
                                        "latency_us": (cycles * scale_us).tolist() if scale_us else None,
                                        "cycles": cycles.tolist(),
                                        "energy_uj": {"layer": part["energy_uj"].astype(float).tolist()},
                                        "level_energy_uj": None, "total_latency_ms": total_ms,
                                        "total_energy_uj": float(part["energy_uj"].astype(float).sum())})
    nets = list(dict.fromkeys(ok["network"].astype(str)))
    failed = int((~ok_mask).sum())
    summary = [("sweep", str(d.resolve())), ("points", f"{len(df)} stored: {len(ok)} evaluated, {failed} failed"),
               ("networks", ", ".join(nets) or "-"),
               ("hardware parameters", ", ".join(c[3:] for c in hw_cols) or "-"),
               ("per-layer detail", "per-layer latency and energy from layers.csv (click a point)"
                if details else "no layers.csv: no per-layer detail")]
    figs = [("Energy against latency", "sweep-scatter", sweep_scatter_figure(ok, points, nets),
             "Every configuration, one colour per network; circled: each network's energy-latency Pareto front. "
             "Click a point for its per-layer breakdown."),
            ("EDP against area", "sweep-area", sweep_area_figure(ok, points, nets), "")]
    cols = [c for c in ["id", "network", *hw_cols, "latency_ms", "energy_uj", "edp_uj_ms", "area_mm2", "onchip_kib",
                        "utilization", "status"] if c in df.columns]
    table = df[cols].sort_values(["network", "edp_uj_ms"], kind="stable") if len(df) else df[cols]
    return render_page(f"codesign report: sweep {d.name}", summary, figs, table,
                       table_title=f"Results ({len(df)} points; click a header to sort, a row to show it)",
                       data={"kind": "sweep", "designs": points, "details": details,
                             "detailNote": "per-layer figures of layers.csv (the sweep records no per-level energy)"})


def _front_mask(x, y) -> list[bool]:
    """Non-dominated (both minimized) points of two lists."""
    order = sorted(range(len(x)), key=lambda i: (x[i], y[i]))
    keep, best = set(), math.inf
    for i in order:
        if y[i] < best:
            keep.add(i)
            best = y[i]
    return [i in keep for i in range(len(x))]


def sweep_scatter_figure(ok, points, nets):
    import plotly.graph_objects as go
    fig = go.Figure()
    for k, net in enumerate(nets):
        sub = ok[ok["network"].astype(str) == net]
        ids = sub["id"].astype(int).tolist()
        x, y = sub["latency_ms"].astype(float).tolist(), sub["energy_uj"].astype(float).tolist()
        color = NETWORK_COLORS[k % len(NETWORK_COLORS)]
        fig.add_trace(go.Scatter(x=x, y=y, mode="markers", name=f"{net} ({len(ids)})", uid=f"points{k}",
                                 marker=dict(color=color, size=8, opacity=0.7), customdata=ids,
                                 hovertext=[points[i]["hover"] for i in ids], hovertemplate="%{hovertext}<extra></extra>"))
        mask = _front_mask(x, y)
        fx = [v for v, m in zip(x, mask) if m]
        fy = [v for v, m in zip(y, mask) if m]
        fids = [v for v, m in zip(ids, mask) if m]
        fig.add_trace(go.Scatter(x=fx, y=fy, mode="lines+markers", name=f"{net}: front ({len(fids)})", uid=f"front{k}",
                                 marker=dict(size=14, color="rgba(0,0,0,0)", line=dict(color=color, width=2)),
                                 line=dict(color=color, width=1), customdata=fids,
                                 hovertext=[points[i]["hover"] for i in fids], hovertemplate="%{hovertext}<extra></extra>"))
    fig.update_layout(height=500, hovermode="closest", xaxis_title="latency per image (ms)",
                      yaxis_title="energy per image (uJ)", margin=dict(l=60, r=30, t=20, b=40),
                      xaxis_type=_axis_type(ok["latency_ms"].astype(float).tolist()),
                      yaxis_type=_axis_type(ok["energy_uj"].astype(float).tolist()))
    return fig


def sweep_area_figure(ok, points, nets):
    import plotly.graph_objects as go
    fig = go.Figure()
    if "area_mm2" not in ok.columns:
        return fig
    for k, net in enumerate(nets):
        sub = ok[ok["network"].astype(str) == net]
        ids = sub["id"].astype(int).tolist()
        fig.add_trace(go.Scatter(x=sub["area_mm2"].astype(float).tolist(), y=sub["edp_uj_ms"].astype(float).tolist(),
                                 mode="markers", name=f"{net} ({len(ids)})", uid=f"area{k}", customdata=ids,
                                 marker=dict(color=NETWORK_COLORS[k % len(NETWORK_COLORS)], size=8, opacity=0.7),
                                 hovertext=[points[i]["hover"] for i in ids], hovertemplate="%{hovertext}<extra></extra>"))
    fig.update_layout(height=420, hovermode="closest", xaxis_title="area (mm2)", yaxis_title="EDP (uJ x ms)",
                      margin=dict(l=60, r=30, t=20, b=40),
                      yaxis_type=_axis_type(ok["edp_uj_ms"].astype(float).tolist()))
    return fig


# ---------------------------------------------------------------------------------------------- the page

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 1.2em 2em; color: #222; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 1.6em; border-bottom: 1px solid #ddd; }
table.summary td { padding: 1px 10px 1px 0; vertical-align: top; } table.summary td:first-child { color: #666; }
p.note { color: #555; font-size: 0.9em; margin: 0.2em 0; }
#detail { border: 1px solid #ccc; border-radius: 6px; padding: 0.6em 1em; background: #fafafa; min-height: 3em; }
#detail-text { font-size: 0.9em; line-height: 1.4; }
table.sortable { border-collapse: collapse; font-size: 0.85em; }
table.sortable th { cursor: pointer; background: #eee; position: sticky; top: 0; }
table.sortable th.asc::after { content: " \\25B2"; } table.sortable th.desc::after { content: " \\25BC"; }
table.sortable td, table.sortable th { border: 1px solid #ddd; padding: 2px 6px; text-align: right;
                                       white-space: nowrap; }
table.sortable tbody tr:hover { background: #eef5ff; cursor: pointer; }
table.sortable tbody tr.selected { background: #ffe9b3; }
.tablewrap { max-height: 36em; overflow: auto; }
"""

_JS = r"""
(function () {
  const DATA = JSON.parse(document.getElementById('report-data').textContent);
  const fmt = v => (v === null || v === undefined) ? '-' : (typeof v === 'number' ? Number(v.toPrecision(4)).toString() : String(v));
  function showDesign(id) {
    const d = DATA.designs[String(id)];
    const text = document.getElementById('detail-text');
    const layers = document.getElementById('detail-layers');
    const levels = document.getElementById('detail-levels');
    document.getElementById('detail-hint').style.display = 'none';
    document.querySelectorAll('table.sortable tbody tr').forEach(tr => {
      tr.classList.toggle('selected', tr.cells[0] && tr.cells[0].textContent.trim() === String(id)); });
    if (!d) { text.innerHTML = 'no data for ' + id; return; }
    text.innerHTML = d.hover;
    const b = DATA.details[String(id)];
    layers.querySelectorAll('.js-plotly-plot').forEach(g => Plotly.purge(g));
    Plotly.purge(levels);
    layers.innerHTML = ''; levels.innerHTML = '';
    if (!b) {
      layers.innerHTML = '<p class="note">No per-layer breakdown embedded for this design (' + DATA.detailNote + ').</p>';
      return;
    }
    const traces = [];
    for (const [part, vals] of Object.entries(b.energy_uj)) {
      traces.push({type: 'bar', x: b.layers, y: vals, name: part + ' (uJ)', xaxis: 'x', yaxis: 'y'});
    }
    const lat = b.latency_us || b.cycles;
    traces.push({type: 'bar', x: b.layers, y: lat, name: b.latency_us ? 'latency (us)' : 'cycles',
                 marker: {color: '#555'}, xaxis: 'x', yaxis: 'y2', showlegend: true});
    const head = document.createElement('p');
    head.className = 'note';
    head.textContent = 'Design ' + id + ', per layer: energy stacked by storage level and MACs (top), latency ' +
                       '(bottom); total ' + fmt(b.total_energy_uj) + ' uJ' +
                       (b.total_latency_ms ? ', ' + fmt(b.total_latency_ms) + ' ms' : '') + '.';
    layers.appendChild(head);
    const plot = document.createElement('div');
    layers.appendChild(plot);
    Plotly.newPlot(plot, traces, {
      barmode: 'stack', height: 520, margin: {l: 70, r: 20, t: 40, b: 120},
      grid: {rows: 2, columns: 1, subplots: [['xy'], ['xy2']], roworder: 'top to bottom'},
      yaxis: {title: 'energy (uJ)', domain: [0.42, 1]},
      yaxis2: {title: b.latency_us ? 'latency (us)' : 'cycles', domain: [0, 0.33]},
      xaxis: {tickangle: -60, automargin: true}, legend: {orientation: 'h', x: 0, y: 1.02, yanchor: 'bottom'}
    }, {displaylogo: false, responsive: true});
    if (b.level_energy_uj) {
      const names = Object.keys(b.level_energy_uj);
      Plotly.newPlot(levels, [{type: 'bar', x: names, y: names.map(n => b.level_energy_uj[n]),
                               text: names.map(n => fmt(b.level_energy_uj[n]) + ' uJ'), textposition: 'auto',
                               marker: {color: '#1f77b4'}}], {
        height: 300, margin: {l: 70, r: 20, t: 30, b: 60}, yaxis: {title: 'energy (uJ)'},
        title: {text: 'energy per storage level and MACs (total ' + fmt(b.total_energy_uj) + ' uJ)', font: {size: 13}}
      }, {displaylogo: false, responsive: true});
    }
  }
  window.codesignShowDesign = showDesign;
  document.querySelectorAll('.js-plotly-plot').forEach(gd => {
    gd.on('plotly_click', ev => {
      const p = ev.points && ev.points[0];
      if (p && p.customdata !== undefined && p.customdata !== null) showDesign(Array.isArray(p.customdata) ? p.customdata[0] : p.customdata);
    });
  });
  document.querySelectorAll('table.sortable').forEach(table => {
    table.querySelectorAll('thead th').forEach((th, col) => th.addEventListener('click', () => {
      const asc = !th.classList.contains('asc');
      table.querySelectorAll('thead th').forEach(h => h.classList.remove('asc', 'desc'));
      th.classList.add(asc ? 'asc' : 'desc');
      const body = table.tBodies[0];
      const rows = Array.from(body.rows);
      const key = tr => { const t = tr.cells[col].textContent.trim(); const n = parseFloat(t);
                          return (t !== '' && !isNaN(n) && /^[-+]?[0-9.]/.test(t)) ? n : t; };
      rows.sort((a, b) => { const x = key(a), y = key(b);
        const c = (typeof x === 'number' && typeof y === 'number') ? x - y : String(x).localeCompare(String(y));
        return asc ? c : -c; });
      rows.forEach(r => body.appendChild(r));
    }));
    table.querySelectorAll('tbody tr').forEach(tr => tr.addEventListener('click', () => showDesign(tr.cells[0].textContent.trim())));
  });
})();
"""


def render_page(title: str, summary, figures, table, *, table_title: str, data: dict) -> str:
    """The whole page: plotly.js inline once, each figure as a div, the detail panel, the table
    (pandas ``to_html``) and the data the click handler reads."""
    import plotly.io as pio
    from plotly.offline import get_plotlyjs
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{html.escape(title)}</title>",
             f"<style>{_CSS}</style>", f"<script type=\"text/javascript\">{get_plotlyjs()}</script>\n</head>\n<body>",
             f"<h1>{html.escape(title)}</h1>", "<table class=\"summary\">"]
    parts += [f"<tr><td>{html.escape(k)}</td><td>{html.escape(v)}</td></tr>" for k, v in summary]
    parts.append("</table>")
    for i, (heading, div_id, fig, note) in enumerate(figures):
        parts.append(f"<h2>{html.escape(heading)}</h2>")
        if note:
            parts.append(f"<p class=\"note\">{html.escape(note)}</p>")
        parts.append(pio.to_html(fig, full_html=False, include_plotlyjs=False, div_id=div_id, config=PLOT_CONFIG))
        if i == 0:
            parts.append("<h2>Selected design</h2><div id=\"detail\"><p id=\"detail-hint\" class=\"note\">Click a "
                         "design in a plot or the table to see its per-layer latency and energy.</p>"
                         "<div id=\"detail-text\"></div><div id=\"detail-layers\"></div><div id=\"detail-levels\">"
                         "</div></div>")
    parts.append(f"<h2>{html.escape(table_title)}</h2>")
    if len(table):
        tbl = table.to_html(index=False, classes="sortable", table_id="front-table", border=0, na_rep="-",
                            float_format=lambda v: f"{v:.4g}", escape=True)
        parts.append(f"<div class=\"tablewrap\">{tbl}</div>")
    else:
        parts.append("<p class=\"note\">(empty)</p>")
    parts.append(f"<script type=\"application/json\" id=\"report-data\">{_script_json(_clean(data))}</script>")
    parts.append(f"<script type=\"text/javascript\">{_JS}</script>\n</body>\n</html>\n")
    return "\n".join(parts)
