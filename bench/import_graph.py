"""The package's import graph, read from the source with ``ast`` (nothing is imported).

Prints: modules and their sizes, import edges between the package's own modules (at module
top, inside functions, and under ``TYPE_CHECKING``), circles, the graph collapsed to the
top-level packages and modules (``watcher.store.rows`` counts as ``watcher.store``), which
module imports which third-party library, and imports inside functions.

A circle is a strongly connected component of the runtime graph (module-top plus
in-function imports; ``TYPE_CHECKING`` imports never run). ``from watcher.x import y`` is an
edge to ``watcher.x.y`` when that is a module, else to ``watcher.x``.

Run: ``python bench/import_graph.py [--package watcher] [--json]``
"""

from __future__ import annotations

import argparse
import ast
import json
import sys
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
STDLIB = set(sys.stdlib_module_names)


@dataclass
class Module:
    """One module: its dotted name, lines, and what it imports (dotted names)."""

    name: str
    path: Path
    lines: int
    top: set[str] = field(default_factory=set)  # imported at module level
    lazy: set[str] = field(default_factory=set)  # imported inside a function or method
    typing: set[str] = field(default_factory=set)  # under `if TYPE_CHECKING:`
    lazy_sites: list[str] = field(default_factory=list)  # "line: import x"


def module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _resolve(node: ast.ImportFrom, current: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = current.split(".") if is_package else current.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def read_module(path: Path, root: Path) -> Module:
    text = path.read_text(encoding="utf-8")
    name = module_name(path, root)
    mod = Module(name, path, len(text.splitlines()))
    is_package = path.name == "__init__.py"

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            kind = where
            if isinstance(child, ast.If) and _is_type_checking(child.test):
                for sub in child.body:
                    visit_one(sub, "typing")
                for sub in child.orelse:
                    visit_one(sub, where)
                continue
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
                kind = "lazy"
            visit_one(child, kind)

    def visit_one(node: ast.AST, where: str) -> None:
        targets: list[str] = []
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = _resolve(node, name, is_package)
            targets = [f"{base}.{a.name}" if base else a.name for a in node.names]
            targets = [base, *targets]  # submodule or attribute: decided later
        if targets:
            getattr(mod, where).update(targets)
            if where == "lazy":
                line = ast.get_source_segment(text, node) or ""
                mod.lazy_sites.append(f"{node.lineno}: {' '.join(line.split())[:90]}")
            return
        if isinstance(node, ast.If) and _is_type_checking(node.test):
            for sub in node.body:
                visit_one(sub, "typing")
            return
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            where = "lazy"
        visit(node, where)

    visit(ast.parse(text), "top")
    return mod


def own_targets(names: Iterable[str], modules: dict[str, Module], package: str) -> set[str]:
    """Map imported dotted names to the package's modules: the longest prefix that is one."""
    out: set[str] = set()
    for dotted in names:
        if dotted != package and not dotted.startswith(package + "."):
            continue
        parts = dotted.split(".")
        while parts and ".".join(parts) not in modules:
            parts.pop()
        if parts:
            out.add(".".join(parts))
    return out


def third_party(names: Iterable[str], package: str) -> set[str]:
    out = set()
    for dotted in names:
        top = dotted.split(".")[0]
        if top and top != package and top not in STDLIB and top != "__future__":
            out.add(top)
    return out


def circles(nodes: Iterable[str], edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one node (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    counter = 0
    for start in sorted(nodes):
        if start in index:
            continue
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = counter
        counter += 1
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            advanced = False
            for child in children:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                    advanced = True
                    break
                if child in on_stack:
                    low[node] = min(low[node], index[child])
            if advanced:
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                comp = []
                while True:
                    top = stack.pop()
                    on_stack.discard(top)
                    comp.append(top)
                    if top == node:
                        break
                if len(comp) > 1:
                    out.append(sorted(comp))
    return out


def floors(nodes: Iterable[str], edges: dict[str, set[str]]) -> int:
    """Length (in modules) of the longest import chain, each circle counted as one floor."""
    group = {n: n for n in nodes}
    for comp in circles(nodes, edges):
        for n in comp:
            group[n] = comp[0]
    dag: dict[str, set[str]] = {}
    for src, targets in edges.items():
        dag.setdefault(group[src], set()).update(
            group[t] for t in targets if group[t] != group[src]
        )
    depth: dict[str, int] = {}

    def walk(node: str) -> int:
        if node not in depth:
            depth[node] = 1 + max((walk(c) for c in dag.get(node, ())), default=0)
        return depth[node]

    return max((walk(n) for n in set(group.values())), default=0)


def collapse(name: str, package: str) -> str:
    parts = name.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else package


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", default="watcher")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--edges", action="store_true", help="also list every runtime edge")
    args = parser.parse_args()
    root = REPO / args.package
    modules = {m.name: m for m in (read_module(p, root) for p in sorted(root.rglob("*.py")))}
    runtime: dict[str, set[str]] = {}
    typing_only = 0
    for mod in modules.values():
        targets = own_targets(mod.top | mod.lazy, modules, args.package) - {mod.name}
        runtime[mod.name] = targets
        typing_only += len(own_targets(mod.typing, modules, args.package) - targets - {mod.name})
    n_edges = sum(len(t) for t in runtime.values())
    top_edges = sum(
        len(own_targets(m.top, modules, args.package) - {m.name}) for m in modules.values()
    )
    cycles = circles(modules, runtime)
    packages: dict[str, set[str]] = {}
    for src, targets in runtime.items():
        a = collapse(src, args.package)
        packages.setdefault(a, set())
        for dst in targets:
            b = collapse(dst, args.package)
            if a != b and b != args.package:
                packages[a].add(b)
    package_cycles = circles(packages, packages)
    libraries: dict[str, set[str]] = {}
    for mod in modules.values():
        for lib in third_party(mod.top | mod.lazy | mod.typing, args.package):
            libraries.setdefault(lib, set()).add(mod.name)
    largest = sorted(modules.values(), key=lambda m: -m.lines)
    lazy_sites = [
        (m.name, s)
        for m in modules.values()
        for s in m.lazy_sites
        if own_targets(m.lazy, modules, args.package) or third_party(m.lazy, args.package)
    ]
    lazy_own = sum(
        1
        for m in modules.values()
        for s in m.lazy_sites
        if f"import {args.package}" in s or f"from {args.package}" in s or "from ." in s
    )
    figures = {
        "modules": len(modules),
        "lines": sum(m.lines for m in modules.values()),
        "edges": n_edges,
        "edges_at_module_top": top_edges,
        "edges_type_checking_only": typing_only,
        "circles": cycles,
        "floors": floors(modules, runtime),
        "packages_and_top_level_modules": len(packages),
        "package_edges": sum(len(t) for t in packages.values()),
        "package_circles": package_cycles,
        "largest": [(m.name, m.lines) for m in largest[:5]],
        "modules_over_400_lines": [(m.name, m.lines) for m in largest if m.lines > 400],
        "imports_inside_functions_of_own_modules": lazy_own,
        "third_party": {lib: sorted(mods) for lib, mods in sorted(libraries.items())},
    }
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"modules: {figures['modules']} ({figures['lines']} lines)")
    print(
        f"import edges between them: {n_edges} ({top_edges} at module top; "
        f"{typing_only} more under TYPE_CHECKING only)"
    )
    print(f"circles: {len(cycles)}" + "".join(f"\n  {' <-> '.join(c)}" for c in cycles))
    print(f"floors (longest import chain): {figures['floors']}")
    print(
        f"packages and top-level modules: {len(packages)}, {figures['package_edges']} edges, "
        f"{len(package_cycles)} circles" + "".join(f"\n  {' <-> '.join(c)}" for c in package_cycles)
    )
    print("largest modules: " + ", ".join(f"{n} {lines}" for n, lines in figures["largest"]))
    over = figures["modules_over_400_lines"]
    print(f"modules over 400 lines: {len(over)}" + (f" ({over})" if over else ""))
    print(f"imports of own modules inside functions: {lazy_own}")
    print("third-party libraries and the modules importing them:")
    for lib, mods in figures["third_party"].items():
        print(f"  {lib}: {', '.join(mods)}")
    if args.edges:
        print("edges:")
        for src in sorted(runtime):
            for dst in sorted(runtime[src]):
                print(f"  {src} -> {dst}")
        print("imports inside functions:")
        for name, site in lazy_sites:
            print(f"  {name}:{site}")


if __name__ == "__main__":
    main()
