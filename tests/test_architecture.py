"""docs/architecture.md is the map of the code: every module it names exists, every module of the two
packages is in it, and libra_train never imports data_synth."""

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
