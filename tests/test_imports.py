"""The import graph of ``accelerators`` and ``codesign`` has no cycle, counting the imports inside
functions too (a function-level import only hides a cycle until that function runs).

Read with ``ast``, nothing imported. An edge runs from a module to every module it names
(``from a.b import c`` names ``a.b.c`` when that is a module, else ``a.b``) and to the packages
above the target that are not above the importer (their ``__init__`` runs first). Imports under
``if TYPE_CHECKING:`` (annotations only, never run) are not edges, nor are imports of
anything outside the two packages (torch, imported lazily so that only ``codesign.nn`` needs it,
numpy, ...) are not edges."""
import ast

from conftest import REPO

PACKAGES = ("accelerators", "codesign")


def modules() -> dict:
    """{dotted name: path} of every module of the two packages."""
    out = {}
    for pkg in PACKAGES:
        for p in (REPO / pkg).rglob("*.py"):
            parts = list(p.relative_to(REPO).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = p
    return out


def _runtime_nodes(tree):
    """Every node of ``tree`` except the bodies of ``if TYPE_CHECKING:`` blocks."""
    todo = [tree]
    while todo:
        node = todo.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and ast.unparse(child.test) in ("TYPE_CHECKING", "typing.TYPE_CHECKING"):
                todo.extend(child.orelse)
            else:
                todo.append(child)


def imports_of(name: str, path, known) -> set:
    is_pkg = path.name == "__init__.py"
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    found = set()
    for node in _runtime_nodes(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = ".".join(here[:len(here) - node.level + 1] + ([node.module] if node.module else [])) \
                if node.level else node.module
            for a in node.names:
                found.add(f"{base}.{a.name}" if f"{base}.{a.name}" in known else base)
    targets = set()
    for t in found:
        while t and t not in known:           # `import a.b.c` of a non-module attribute path
            t = t.rpartition(".")[0]
        if not t or t == name:
            continue
        targets.add(t)
        parts = t.split(".")
        for i in range(1, len(parts)):
            parent = ".".join(parts[:i])
            if parent in known and not (name + ".").startswith(parent + "."):
                targets.add(parent)
    targets.discard(name)
    return targets


def graph() -> dict:
    known = modules()
    return {n: imports_of(n, p, known) for n, p in known.items()}


def find_cycle(g: dict):
    """One cycle as a list of modules, or None (iterative depth-first search)."""
    state = {}
    for root in sorted(g):
        if root in state:
            continue
        stack = [(root, iter(sorted(g[root])))]
        state[root] = "open"
        path = [root]
        while stack:
            node, it = stack[-1]
            nxt = next(it, None)
            if nxt is None:
                stack.pop(); path.pop(); state[node] = "done"
            elif state.get(nxt) == "open":
                return path[path.index(nxt):] + [nxt]
            elif nxt not in state:
                state[nxt] = "open"; path.append(nxt); stack.append((nxt, iter(sorted(g[nxt]))))
    return None


def test_checker_finds_a_cycle_and_resolves_relative_imports(tmp_path):
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    pkg = tmp_path / "p"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("")
    (pkg / "x.py").write_text("def f():\n    from .sub import y\n")
    (pkg / "sub" / "y.py").write_text("from ..x import f\n")
    (pkg / "z.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from .x import f\n")
    known = {"p": pkg / "__init__.py", "p.sub": pkg / "sub" / "__init__.py", "p.x": pkg / "x.py",
             "p.sub.y": pkg / "sub" / "y.py", "p.z": pkg / "z.py"}
    assert imports_of("p.x", known["p.x"], known) == {"p.sub.y", "p.sub"}
    assert imports_of("p.sub.y", known["p.sub.y"], known) == {"p.x"}
    assert imports_of("p.z", known["p.z"], known) == set()
    g = {n: imports_of(n, p, known) for n, p in known.items()}
    assert find_cycle(g) is not None


def test_no_import_cycle():
    g = graph()
    assert len(g) > 60 and "codesign.search.problem" in g
    cycle = find_cycle(g)
    assert cycle is None, " -> ".join(cycle)


def test_only_codesign_nn_imports_torch_at_module_level():
    # codesign.darts (issue #22) is torch's too: the relaxation, losses and loop are torch code;
    # its look-up table (lut) and run directory (run) import torch only inside functions
    torch_darts = ("codesign.darts.relax", "codesign.darts.loss", "codesign.darts.search", "codesign.darts.hwspace")
    for name, path in modules().items():
        if name.startswith("codesign.nn.") or name == "accelerators.torch_frontend" or name in torch_darts:
            continue
        tree = ast.parse(path.read_text())
        top = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
        names = {a.name for n in top if isinstance(n, ast.Import) for a in n.names} | \
                {n.module for n in top if isinstance(n, ast.ImportFrom) and n.module}
        assert not any(m == "torch" or m.startswith("torch.") for m in names), name


SHIMS = {"genome_layers": "space.layers", "supernet": "nn.supernet", "supernet_shape": "nn.shape",
         "quant": "nn.quant", "quant_ranges": "nn.quant_ranges", "train": "nn.train", "accuracy": "nn.measure",
         "proxies": "nn.proxies", "model_card": "nn.model_card", "data": "nn.data", "transforms": "nn.transforms",
         "predictor": "predictors.accuracy", "cost_predictor": "predictors.cost",
         "cost_features": "predictors.features", "cost_data": "predictors.cost_data", "evaluator": "search.problem",
         "cosearch": "search.algorithms", "nsga2": "search.nsga2", "parallel": "search.executors",
         "store": "rundir.store", "run": "rundir.search", "plots": "report.plots",
         "cli_run": "cli.runner", "cli_sweep": "cli.sweep", "cli_cost": "cli.cost", "cli_export": "cli.export"}


def test_old_import_paths_are_the_new_modules():
    import importlib
    for old, new in SHIMS.items():
        assert importlib.import_module(f"codesign.{old}") is importlib.import_module(f"codesign.{new}"), old
    from codesign.genome import DEFAULT_SPACE, genome_key
    from codesign.space.genome import DEFAULT_SPACE as space, subnet_key
    assert DEFAULT_SPACE is space and genome_key is subnet_key
    from codesign.space import JointSpace, load_space          # the pre-0.2 codesign.space module's names
    from codesign.space.joint import JointSpace as J, load_space as L
    assert (JointSpace, load_space) == (J, L)
    shims = {p.stem for p in (REPO / "codesign").glob("*.py")} - {"__init__", "__main__", "artifacts", "jsonio", "api"}
    from codesign.export import export_design, export_table, run_kind   # split in two: tables and design
    from codesign.report.design import export_design as d
    from codesign.report.tables import export_table as t, run_kind as k
    assert (export_design, export_table, run_kind) == (d, t, k)
    from codesign.sweep import load_sweep, run_sweep                  # split in two: the file and the run
    from codesign.rundir.sweep import run_sweep as r
    from codesign.space.sweep import load_sweep as f
    assert (load_sweep, run_sweep) == (f, r)
    assert shims == set(SHIMS) | {"genome", "export", "sweep"}
