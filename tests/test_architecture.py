"""docs/architecture.md is the map of the code: every module it names exists, every module of the two
packages is in it, and libra_train never imports data_synth."""

import ast
import re

from tests.conftest import REPO

DOC = (REPO / "docs" / "architecture.md").read_text(encoding="utf-8")
PACKAGES = ("libra_train", "data_synth")


def _modules_on_disk() -> set[str]:
    return {
        str(p.relative_to(REPO))
        for pkg in PACKAGES
        for p in (REPO / pkg).rglob("*.py")
        if p.name != "__init__.py"
    }


def test_every_module_named_in_the_map_exists():
    named = set(re.findall(r"`((?:libra_train|data_synth)/[\w/]+\.py)", DOC))
    assert named and not sorted(named - _modules_on_disk())


def test_every_module_and_package_is_in_the_map():
    assert not sorted(m for m in _modules_on_disk() if f"`{m}`" not in DOC)
    inits = [p for pkg in PACKAGES for p in (REPO / pkg).rglob("__init__.py")]
    packages = {str(p.parent.relative_to(REPO)) for p in inits}
    assert not sorted(p for p in packages if f"{p}/" not in DOC)


def test_libra_train_does_not_import_data_synth():
    pattern = re.compile(r"^\s*(from|import) data_synth", re.M)
    files = (REPO / "libra_train").rglob("*.py")
    importing = [str(p.relative_to(REPO)) for p in files if pattern.search(p.read_text(encoding="utf-8"))]
    assert importing == []


def test_no_comment_points_outside_the_repository():
    files = [p for pkg in (*PACKAGES, "tests", "benchmarks") for p in (REPO / pkg).rglob("*.py")]
    outside = "DESIGN" + " §"  # a section of a design document that is not in the repository
    assert not [str(p) for p in files if outside in p.read_text(encoding="utf-8")]


# The layers of libra_train, lowest first (docs/architecture.md, "Layers"). A module may import from its
# own layer or a lower one, never a higher one; with the cycle check below, each arrow runs down.
LAYERS = (
    ("errors", "progress", "redaction", "conf_dir", "cli_utils", "typed"),
    ("data", "qwen_vocab", "chat"),
    ("config_groups",),
    ("config", "config_checks", "command_config", "plotting", "runtime"),
    ("model", "ensemble"),
    ("eval", "export", "stream"),
    ("train",),
    ("tracking", "reporting", "run_record"),
    ("steps",),
    ("pipeline",),
    ("members",),
    ("launch", "serve"),
    ("cli",),
)


def _module_name(path) -> str:
    parts = path.relative_to(REPO).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph(package: str = "libra_train") -> dict[str, set[str]]:
    """Every module of the package → the package's modules it imports, at the top or inside a function."""
    files = {_module_name(p): p for p in (REPO / package).rglob("*.py")}
    graph = {}
    for name, path in files.items():
        found = set()
        for node in ast.walk(_without_type_checking(ast.parse(path.read_text(encoding="utf-8")))):
            if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found.update(
                    f"{node.module}.{a.name}" if f"{node.module}.{a.name}" in files else node.module
                    for a in node.names
                )
            elif isinstance(node, ast.Import):
                found.update(a.name for a in node.names)
        graph[name] = {m for m in found if m in files and m != name}
    return graph


def _without_type_checking(tree):
    """The module without its `if TYPE_CHECKING:` branches: imports for annotations only never run, so
    they make no arrow (config_checks annotates with the RunConfig that config.py builds); an `else:`
    branch runs and stays."""
    for node in ast.walk(tree):
        for field in ("body", "orelse"):
            block = getattr(node, field, None)
            if isinstance(block, list):
                kept = []
                for b in block:
                    kept.extend(b.orelse if _is_type_checking(b) else [b])
                setattr(node, field, kept)
    return tree


def _is_type_checking(node) -> bool:
    return isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING"


def layer_of(module: str) -> int:
    unit = module.split(".")[1] if "." in module else ""
    for rank, layer in enumerate(LAYERS):
        if unit in layer:
            return rank
    raise AssertionError(f"{module} is in no layer of tests/test_architecture.LAYERS")


def upward_imports(graph: dict[str, set[str]]) -> list[str]:
    return sorted(
        f"{a} -> {b}"
        for a, targets in graph.items()
        for b in targets
        if "." in a and layer_of(b) > layer_of(a)
    )


def import_cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm)."""
    index, low, stack, on_stack, groups = {}, {}, [], set(), []

    def visit(v):
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return groups


def test_imports_run_down_the_layers():
    assert upward_imports(import_graph()) == []


def test_no_import_cycle():
    assert import_cycles(import_graph()) == []


def test_the_layer_checks_catch_an_upward_import_and_a_cycle():
    graph = {k: set(v) for k, v in import_graph().items()}
    graph["libra_train.eval.metrics"].add("libra_train.pipeline")
    assert upward_imports(graph) == ["libra_train.eval.metrics -> libra_train.pipeline"]
    graph["libra_train.data.io"].add("libra_train.data.formats")  # formats imports io: a cycle
    assert any({"libra_train.data.formats", "libra_train.data.io"} <= set(g) for g in import_cycles(graph))


def test_an_import_for_annotations_only_makes_no_arrow_and_its_else_branch_does():
    source = (
        "from typing import TYPE_CHECKING\n"
        "from libra_train.errors import ConfigError\n"
        "if TYPE_CHECKING:\n"
        "    from libra_train.config import RunConfig\n"
    )
    tree = _without_type_checking(ast.parse(source + "else:\n    from libra_train.data import io\n"))
    assert {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} == {
        "typing",
        "libra_train.errors",
        "libra_train.data",
    }
