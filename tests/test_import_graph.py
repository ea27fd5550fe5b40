"""The package's import graph: imports point down the layers, no cycle, no private name
across packages. Every import counts: module level, inside functions, under TYPE_CHECKING.

Layers, lowest first (a module may import its own package and any lower layer):
core -> text, metrics -> catalog, llm -> simulators -> envs -> policies -> tasks -> rl ->
evaluation -> cli. ``recoworld/__init__.py`` is the facade on top.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1] / "recoworld"
LAYERS = {
    "core": 0,
    "text": 1,
    "metrics": 1,
    "catalog": 2,
    "llm": 2,
    "simulators": 3,
    "envs": 4,
    "policies": 5,
    "tasks": 6,
    "rl": 7,
    "evaluation": 8,
    "cli": 9,
}


def _modules(root: Path) -> dict[str, Path]:
    out = {}
    for f in root.rglob("*.py"):
        parts = list(f.relative_to(root.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = f
    return out


def import_graph(root: Path = ROOT) -> tuple[dict[str, set[str]], list[str]]:
    """(module -> imported modules, private cross-package imports) of package ``root``."""
    pkg = root.name
    modules = _modules(root)

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    edges: dict[str, set[str]] = {m: set() for m in modules}
    private: list[str] = []
    for mod, f in modules.items():
        is_pkg = f.name == "__init__.py"
        base = mod if is_pkg else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(f.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                targets = [(a.name, None) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    anchor = base.split(".")[: len(base.split(".")) - (node.level - 1)]
                    src = ".".join(anchor + ([node.module] if node.module else []))
                else:
                    src = node.module or ""
                targets = [(src, a.name) for a in node.names]
            else:
                continue
            for src, attr in targets:
                if not (src == pkg or src.startswith(pkg + ".")):
                    continue
                full = f"{src}.{attr}" if attr and f"{src}.{attr}" in modules else src
                dst = resolve(full)
                if dst is None or dst == mod or (is_pkg and dst.startswith(mod + ".")):
                    continue
                edges[mod].add(dst)
                names = [n for n in ([attr] if attr else []) + full.split(".")[1:] if n]
                if mod.split(".")[:2] != dst.split(".")[:2] and any(
                    n.startswith("_") and not n.startswith("__") for n in names
                ):
                    private.append(f"{mod} imports {full}.{attr}" if attr else full)
    return edges, private


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in sorted(edges):
        if start in index:
            continue
        work = [(start, iter(sorted(edges[start])))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on.add(start)
        while work:
            v, it = work[-1]
            for w in it:
                if w not in index:
                    index[w] = low[w] = counter
                    counter += 1
                    stack.append(w)
                    on.add(w)
                    work.append((w, iter(sorted(edges[w]))))
                    break
                if w in on:
                    low[v] = min(low[v], index[w])
            else:
                work.pop()
                if work:
                    low[work[-1][0]] = min(low[work[-1][0]], low[v])
                if low[v] == index[v]:
                    comp = []
                    while True:
                        w = stack.pop()
                        on.discard(w)
                        comp.append(w)
                        if w == v:
                            break
                    if len(comp) > 1:
                        out.append(sorted(comp))
    return out


def layer(module: str) -> int:
    parts = module.split(".")
    if len(parts) == 1:
        return max(LAYERS.values()) + 1  # the facade
    return LAYERS[parts[1]]


def upward(edges: dict[str, set[str]]) -> list[str]:
    bad = []
    for mod, dsts in edges.items():
        for dst in dsts:
            same = mod.split(".")[:2] == dst.split(".")[:2]
            if not same and layer(dst) >= layer(mod):
                bad.append(f"{mod} (layer {layer(mod)}) imports {dst} (layer {layer(dst)})")
    return sorted(bad)


def test_every_top_level_package_has_a_layer() -> None:
    tops = {p.stem for p in ROOT.iterdir() if p.suffix == ".py" or (p / "__init__.py").exists()}
    assert tops - {"__init__", "py"} <= set(LAYERS), sorted(tops - set(LAYERS) - {"__init__"})


def test_no_cycle_no_private_import_and_layers_point_down() -> None:
    edges, private = import_graph()
    assert cycles(edges) == []
    assert private == []
    assert upward(edges) == []


def test_the_checker_catches_cycles_private_names_and_upward_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "recoworld"
    for sub in ("core", "envs"):
        (pkg / sub).mkdir(parents=True)
        (pkg / sub / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "core" / "a.py").write_text("def f():\n    from recoworld.core.b import g\n")
    (pkg / "core" / "b.py").write_text("from recoworld.core.a import f\n")
    (pkg / "core" / "c.py").write_text("from recoworld.envs.d import x\n")
    (pkg / "envs" / "d.py").write_text("from recoworld.core.a import _hidden\nx = 1\n")
    edges, private = import_graph(pkg)
    assert cycles(edges) == [["recoworld.core.a", "recoworld.core.b"]]
    assert private == ["recoworld.envs.d imports recoworld.core.a._hidden"]
    assert upward(edges) == ["recoworld.core.c (layer 0) imports recoworld.envs.d (layer 4)"]


@pytest.mark.parametrize("module", ["recoworld", "recoworld.envs", "recoworld.policies"])
def test_light_imports_pull_no_heavy_framework(module: str) -> None:
    """The core (gym env, vector env, baselines) imports without torch, Ray, vLLM or
    transformers, even where they are installed."""
    code = (
        f"import sys, {module}; "
        "heavy = [m for m in ('torch', 'ray', 'vllm', 'transformers') if m in sys.modules]; "
        "print(heavy); sys.exit(1 if heavy else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
