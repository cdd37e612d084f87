"""The interactive HTML report (``codesign report RUN``; ``codesign.report.html``): a tiny real
search (12 designs, some breaking a constraint) and a tiny sweep, the report's file (one
self-contained file: plotly.js inline, no URL to load), its data (every design, the per-layer
breakdown of the front designs, the constraint each infeasible design breaks), the ``violates``
column of all.csv, the matplotlib Pareto plot's legend per constraint, the command line; and the
page in a real headless Chromium (selenium): the plot renders one point per front design, the
hover names a design, a click fills the detail panel, the table sorts, a screenshot is written."""
import html
import json
import os
import re
import shutil
import subprocess
import sys
import time

import pandas as pd
import pytest

from conftest import REPO

CONSTRAINTS = {"area_mm2": 2.5, "onchip_kib": 200, "min_accuracy": None}


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A 12-design search (predictor accuracy, mapper budget 150: a few seconds) whose tighter area
    and on-chip limits make some designs infeasible."""
    from codesign.rundir.search import search_config, start_search
    from codesign.search.problem import evaluator_config
    from codesign.space.joint import read_space
    space, name = read_space()
    space = dict(space, constraints=dict(space["constraints"], **CONSTRAINTS))
    d = tmp_path_factory.mktemp("report") / "run"
    cfg = search_config(evaluator_config(space, name, "predictor", mapper_budget=150), budget=12, population=4, seed=1)
    start_search(d, cfg)
    return d


@pytest.fixture(scope="module")
def report(run_dir):
    from codesign.report.html import write_report
    return write_report(run_dir, log=lambda *a: None)


@pytest.fixture(scope="module")
def sweep_dir(tmp_path_factory):
    from codesign.rundir.sweep import run_sweep
    from codesign.space.sweep import load_sweep
    d = tmp_path_factory.mktemp("report") / "sweep"
    run_sweep(load_sweep(REPO / "specs" / "sweeps" / "smoke.yaml"), d)
    return d


def page_data(path) -> dict:
    text = path.read_text(encoding="utf-8")
    m = re.search(r'<script type="application/json" id="report-data">(.*?)</script>', text, re.S)
    assert m, "no embedded data"
    return json.loads(m.group(1).replace("<\\/", "</"))


def page_table(path) -> tuple[list, list]:
    """(header, first-column values) of the page's table."""
    text = path.read_text(encoding="utf-8")
    m = re.search(r'<table[^>]*id="front-table"[^>]*>(.*?)</table>', text, re.S)
    assert m, "no table"
    head, _, body = m.group(1).partition("</thead>")
    header = [html.unescape(h) for h in re.findall(r"<th(?:\s[^>]*)?>(.*?)</th>", head, re.S)]
    ids = [int(v) for v in re.findall(r"<tr[^>]*>\s*<td[^>]*>(.*?)</td>", body, re.S)]
    return header, ids


def test_report_is_one_self_contained_file(run_dir, report):
    assert report == run_dir / "report.html"
    text = report.read_text(encoding="utf-8")
    assert len(text) > 1_000_000                                  # plotly.js is in the file
    assert re.search(r"<script[^>]*\bsrc\s*=", text, re.I) is None, "a script loaded from elsewhere"
    assert re.search(r"<link[^>]*\bhref\s*=\s*[\"']https?://", text, re.I) is None
    assert "Plotly.newPlot" in text and 'id="pareto-2d"' in text and 'id="pareto-3d"' in text
    assert 'id="hypervolume"' in text and 'id="front-table"' in text and 'id="detail"' in text


def test_report_holds_every_design_and_the_front_breakdowns(run_dir, report):
    from codesign.rundir.search import load_run
    _, res = load_run(run_dir)
    front_ids = {r["id"] for r in res.front()}
    data = page_data(report)
    assert data["kind"] == "search"
    assert {int(k) for k in data["designs"]} == {r["id"] for r in res.rows}
    assert {int(k) for k in data["details"]} == front_ids
    for k, b in data["details"].items():
        n = len(b["layers"])
        assert n > 5 and len(b["latency_us"]) == n
        assert set(b["energy_uj"]) >= {"MAC", "DRAM"} and all(len(v) == n for v in b["energy_uj"].values())
        stored = res.rows[int(k)]["metrics"]
        assert sum(sum(v) for v in b["energy_uj"].values()) == pytest.approx(stored["energy_uj"], rel=1e-6)
        assert sum(b["level_energy_uj"].values()) == pytest.approx(stored["energy_uj"], rel=1e-6)
        assert sum(b["latency_us"]) / 1e3 == pytest.approx(stored["latency_ms"], rel=1e-6)
    front = data["designs"][str(min(front_ids))]
    assert front["front"] and "accuracy (predicted)" in front["hover"] and "PEs" in front["hover"]
    # the table: one row per front design
    header, ids = page_table(report)
    assert sorted(ids) == sorted(front_ids)
    assert header[0] == "id" and "accuracy (predicted)" in header


def test_infeasible_designs_say_which_constraint_they_break(run_dir, report):
    all_csv = pd.read_csv(run_dir / "all.csv", keep_default_na=False)
    assert "violates" in all_csv.columns
    assert "violates" not in pd.read_csv(run_dir / "front.csv").columns      # front.csv stays as it was
    infeasible = all_csv[all_csv["violation"] > 0]
    assert len(infeasible) and (all_csv["violation"] == 0).any(), "the fixture should mix feasible and infeasible"
    assert (infeasible["violates"] != "").all() and (all_csv[all_csv["violation"] == 0]["violates"] == "").all()
    for _, r in infeasible.iterrows():
        for key in r["violates"].split(";"):
            assert r[key] > CONSTRAINTS[key]
    data = page_data(report)
    for _, r in infeasible.iterrows():
        d = data["designs"][str(r["id"])]
        assert d["infeasible"] and d["violates"] == r["violates"]
        assert "breaks" in d["hover"] and r["violates"].split(";")[0] in d["hover"]
    text = report.read_text(encoding="utf-8")
    assert "infeasible: area_mm2" in text or "infeasible: onchip_kib" in text     # a legend entry per constraint


def test_matplotlib_pareto_plot_has_a_legend_entry_per_constraint(run_dir, monkeypatch, tmp_path):
    from codesign.report import plots
    labels = []

    def keep(fig, outdir, stem, formats):
        if stem == "pareto":
            labels.extend(t.get_text() for ax in fig.axes if ax.get_legend() for t in ax.get_legend().get_texts())
        plots._plt().close(fig)
        return []
    monkeypatch.setattr(plots, "_save", keep)
    plots.plot_search(run_dir, tmp_path, formats=("png",), log=lambda *a: None)
    infeasible = [l for l in labels if l.startswith("infeasible")]
    violates = set(pd.read_csv(run_dir / "all.csv", keep_default_na=False)["violates"]) - {""}
    assert len(infeasible) == 2 * len(violates)               # one entry per constraint set, in both panels
    for key in violates:
        assert any(f"{key} > {CONSTRAINTS[key]:g}" in l for l in infeasible), (key, infeasible)


def test_sweep_report(sweep_dir, tmp_path):
    from codesign.report.html import write_report
    out = write_report(sweep_dir, tmp_path / "sweep.html")
    data = page_data(out)
    results = pd.read_csv(sweep_dir / "results.csv")
    assert data["kind"] == "sweep" and len(data["designs"]) == len(results) == 4
    assert {int(k) for k in data["details"]} == set(results["id"])
    for k, b in data["details"].items():
        assert sum(b["latency_us"]) / 1e3 == pytest.approx(float(results.set_index("id").loc[int(k), "latency_ms"]))
    assert sorted(page_table(out)[1]) == [0, 1, 2, 3]
    assert 'id="sweep-scatter"' in out.read_text(encoding="utf-8")


def test_cli_report_and_its_errors(run_dir, tmp_path, capsys):
    from codesign.cli import main
    out = tmp_path / "sub" / "r.html"
    assert main(["report", str(run_dir), "--out", str(out), "--max-details", "0"]) == 0
    assert "report: " in capsys.readouterr().out and out.is_file()
    assert page_data(out)["details"] == {}
    assert main(["report", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error:") and "none" in err and len(err.splitlines()) == 1
    assert main(["report", str(run_dir), "--out", str(tmp_path)]) == 2
    assert "directory" in capsys.readouterr().err
    assert main(["report", str(run_dir), "--max-details", "-1"]) == 2
    assert "--max-details" in capsys.readouterr().err
    assert main(["report", str(run_dir), "--workers", "0"]) == 2
    assert "--workers" in capsys.readouterr().err


def test_breakdowns_sent_by_the_search_workers_equal_the_report_mapped_ones(tmp_path):
    """With worker processes, ``codesign search`` has each task send its candidate's per-layer
    breakdown (``evaluate_candidate_detailed``), and the report uses those of the front instead
    of mapping the designs again: the same figures as mapping them in the report."""
    import zlib
    from codesign.report.html import front_details
    from codesign.rundir.search import search_config, start_search
    from codesign.search.problem import evaluator_config
    from codesign.space.joint import read_space, space_from_dict
    space_dict, name = read_space()
    ev = evaluator_config(space_dict, name, "macs", mapper_budget=150)
    res = start_search(tmp_path / "run", search_config(ev, budget=8, population=4, seed=3), workers=2, details=True)
    front = [r for r in res.front() if r["metrics"].get("latency_ms") is not None]
    assert front and set(res.layer_details) == {r["id"] for r in front}
    space = space_from_dict(ev["space"], name)
    mapped, _ = front_details(space, ev, front, 40)
    sent, _ = front_details(space, ev, front, 40, sent=res.layer_details)
    assert sent == mapped
    assert json.loads(zlib.decompress(res.layer_details[front[0]["id"]])) == mapped[front[0]["id"]]
    # the per-layer energy plot of the best-EDP design uses them too: nothing is mapped again
    import codesign.report.design as design
    from codesign.report.plots import plot_dir

    def no_mapping(*a, **k):
        raise AssertionError("mapped again")
    real = design.evaluate_design
    design.evaluate_design = no_mapping
    try:
        paths = plot_dir(tmp_path / "run", details=res.layer_details, log=lambda *a: None)
    finally:
        design.evaluate_design = real
    assert any(p.name.startswith("design_") and p.stat().st_size > 10_000 for p in paths)


def test_front_breakdowns_mapped_in_worker_processes_equal_the_serial_ones(run_dir, report, tmp_path):
    """``codesign search --workers N`` maps the report's front designs in N processes (no mapping
    cache of the run in this process): the same per-layer breakdowns, value for value."""
    from codesign.cli import main
    out = tmp_path / "pool.html"
    assert main(["report", str(run_dir), "--out", str(out), "--workers", "2", "--quiet"]) == 0
    serial, pooled = page_data(report)["details"], page_data(out)["details"]
    assert len(serial) >= 2 and pooled == serial


def test_search_and_sweep_write_the_report(tmp_path):
    env = dict(os.environ, PYTHONPATH=str(REPO))
    r = subprocess.run([sys.executable, "-m", "codesign", "search", "--budget", "4", "--population", "2",
                        "--accuracy", "macs", "--mapper-budget", "100", "--no-plot", "--quiet",
                        "--out", str(tmp_path / "s")], capture_output=True, text=True, cwd=REPO, env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert f"report: {tmp_path / 's' / 'report.html'}" in r.stdout and (tmp_path / "s" / "report.html").is_file()
    r = subprocess.run([sys.executable, "-m", "codesign", "sweep", str(REPO / "specs" / "sweeps" / "smoke.yaml"),
                        "--quiet", "--json", "--out", str(tmp_path / "w")], capture_output=True, text=True, cwd=REPO,
                       env=env, timeout=300)
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["report_html"] == str(tmp_path / "w" / "report.html")
    assert (tmp_path / "w" / "report.html").is_file()


def test_report_needs_no_torch(run_dir, tmp_path):
    code = ("import sys; sys.modules['torch'] = None\n"          # importing torch would fail
            "from codesign.report.html import write_report\n"
            f"write_report({str(run_dir)!r}, {str(tmp_path / 'r.html')!r}, max_details=1)\n")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    assert (tmp_path / "r.html").is_file()


# ----------------------------------------------------------------------------- a real browser

def chrome_driver():
    """Headless Chromium through selenium (the Debian packages' chromium and chromedriver), or a
    skip saying what is missing."""
    missing = [b for b in ("chromium", "chromedriver") if not shutil.which(b)]
    if missing:
        pytest.skip(f"no {' or '.join(missing)} on PATH (Debian: apt-get install chromium chromium-driver)")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install selenium)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = shutil.which("chromium")
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--window-size=1400,1000",
              "--disable-dev-shm-usage"):
        opts.add_argument(a)
    return webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)


def _wait(driver, cond, timeout=20.0, what=""):
    from selenium.webdriver.support.ui import WebDriverWait
    return WebDriverWait(driver, timeout).until(lambda d: cond(d), message=what)


def test_report_in_a_headless_browser(run_dir, report, tmp_path):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    from codesign.rundir.search import load_run
    _, res = load_run(run_dir)
    front = res.front()
    driver = chrome_driver()
    try:
        driver.get(report.resolve().as_uri())
        sel = "#pareto-2d g.tracefront-lat path.point"
        points = _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, sel), what="no front points drawn")
        assert len(points) == len(front)
        svg = driver.find_element(By.CSS_SELECTOR, "#pareto-2d svg.main-svg")
        assert svg.size["width"] > 300 and svg.size["height"] > 200
        tooltip = lambda d: " ".join(e.text for e in d.find_elements(By.CSS_SELECTOR, "#pareto-2d .hoverlayer text"))
        # hover: plotly's tooltip names the design, its accuracy source and its hardware
        ActionChains(driver).move_to_element(points[0]).perform()
        hover = _wait(driver, tooltip, what="no tooltip")
        assert "design" in hover and "accuracy (predicted)" in hover and "PEs" in hover, hover
        # an infeasible design's tooltip names the constraint it breaks
        bad = driver.find_elements(By.CSS_SELECTOR, "#pareto-2d g.traceinfeasible0-lat path.point")
        assert bad, "no infeasible point drawn"
        ActionChains(driver).move_to_element(bad[0]).perform()
        hover = _wait(driver, lambda d: tooltip(d) if "breaks" in tooltip(d) else "", what="no 'breaks' in the tooltip")
        assert "area_mm2" in hover or "onchip_kib" in hover, hover
        # click a front design: the detail panel shows it, with its per-layer and per-level plots
        points = driver.find_elements(By.CSS_SELECTOR, sel)
        ActionChains(driver).move_to_element(points[0]).click().perform()
        text = _wait(driver, lambda d: d.find_element(By.ID, "detail-text").text, what="detail panel empty")
        assert re.match(r"design \d+ ", text) and "hw:" in text
        shown = int(re.match(r"design (\d+)", text).group(1))
        assert shown in {r["id"] for r in front}
        bars = _wait(driver, lambda d: d.find_elements(By.CSS_SELECTOR, "#detail-layers g.trace.bars path"),
                     what="no per-layer bars")
        assert len(bars) > 10
        assert driver.find_elements(By.CSS_SELECTOR, "#detail-levels g.trace.bars path")
        # the table sorts on a header click (numbers as numbers), descending on the second
        th = next(h for h in driver.find_elements(By.CSS_SELECTOR, "#front-table thead th") if h.text == "energy_uj")
        col = [h.text for h in driver.find_elements(By.CSS_SELECTOR, "#front-table thead th")].index("energy_uj")
        values = lambda: [float(tr.find_elements(By.TAG_NAME, "td")[col].text)
                          for tr in driver.find_elements(By.CSS_SELECTOR, "#front-table tbody tr")]
        driver.execute_script("arguments[0].scrollIntoView();", th)
        th.click()
        assert values() == sorted(values())
        th.click()
        assert values() == sorted(values(), reverse=True)
        png = tmp_path / "report.png"
        driver.execute_script("window.scrollTo(0, 0);")
        time.sleep(0.2)
        assert driver.save_screenshot(str(png))
        assert png.stat().st_size > 10_000 and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        errors = [e for e in driver.get_log("browser") if e.get("level") == "SEVERE"]
        assert not errors, errors
    finally:
        driver.quit()


def test_re_measured_front_designs_show_measured_accuracy(run_dir, tmp_path):
    """Designs re-measured by codesign verify (rows of the store's ``measured`` table) show their
    measured top-1, labelled measured; the others keep the predicted figure, labelled predicted."""
    import shutil
    from codesign.report.html import write_report
    from codesign.rundir.search import load_run
    from codesign.rundir.store import open_run
    d = tmp_path / "run"
    shutil.copytree(run_dir, d)
    _, res = load_run(d)
    r = res.front()[0]
    with open_run(d) as store:
        store.put_measured(r["key"], r["genome"]["hw"]["bits"], {"split": "validation", "images": 80}, 61.25)
    data = page_data(write_report(d, d / "m.html", max_details=0, log=lambda *a: None))
    text = json.dumps(data)
    assert "accuracy (measured): 61.25" in text
    assert "accuracy (predicted)" in text and text.count("accuracy (measured)") >= 1


def test_sent_breakdowns_are_pruned_to_the_front_past_a_limit():
    """The breakdowns a worker run's tasks send are kept in memory; past ``details_limit`` they are
    pruned to the front of the rows scored so far (only the front's are reported), so memory
    grows with the front, not the run."""
    from codesign.search.algorithms import Scorer, pareto_front

    class InProcess:
        kind = "processes"

        def map(self, fn, items, done):
            for i, it in enumerate(items):
                done(i, fn(*it))

    def task(cfg_json, genome):
        m = {"top1_pct": genome["acc"], "latency_ms": genome["lat"], "violation": 0.0}
        return {"metrics": m, "status": "ok", "error": None, "seconds": 0.0, "worker": "w",
                "details": b"breakdown %d" % genome["id"]}
    scorer = Scorer(executor=InProcess(), task=task, cfg_json="{}")
    scorer.details_objectives, scorer.details_limit = ["accuracy", "latency"], 8
    rows = []
    for gen in range(5):
        batch = [{"id": len(rows) + i, "key": str(len(rows) + i), "generation": gen,
                  "genome": {"id": len(rows) + i, "acc": float((7 * (len(rows) + i)) % 13), "lat": float(i + gen)}}
                 for i in range(6)]
        rows += batch
        scorer(batch)
        assert len(scorer.details) <= max(8, 2 * len(pareto_front(rows, ["accuracy", "latency"])))
    front = {r["id"] for r in pareto_front(rows, ["accuracy", "latency"])}
    assert front <= set(scorer.details) and len(scorer.details) < len(rows)
    assert all(scorer.details[i] == b"breakdown %d" % i for i in front)
