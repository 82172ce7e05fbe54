"""No import circles among edge/ and transcoding/ modules (scripts/import_cycles.py).

A circle that the code base still has and a planned change will end is listed in
KNOWN_CIRCLES with the change that ends it; any other circle fails, and so does a
listed one that no longer exists (so the list cannot go stale).
"""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _load_script():
    spec = importlib.util.spec_from_file_location("import_cycles", ROOT / "scripts" / "import_cycles.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("import_cycles", module)  # dataclasses resolve their module by name
    spec.loader.exec_module(module)
    return module


import_cycles = _load_script()

# Circles allowed for now, each with what ends it (none today: keep it that way).
KNOWN_CIRCLES: dict[frozenset[str], str] = {}


def _describe(circle) -> str:
    return " / ".join(e.describe() for e in circle.loop)


def test_no_import_circles_beyond_the_known_ones():
    found = {c.modules: c for c in import_cycles.cycles(ROOT)}
    new = [_describe(c) for modules, c in found.items() if modules not in KNOWN_CIRCLES]
    assert not new, "import circles:\n" + "\n".join(new)
    gone = [why for modules, why in KNOWN_CIRCLES.items() if modules not in found]
    assert not gone, f"these circles are gone; take them off KNOWN_CIRCLES: {gone}"


def _tree(tmp_path: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    for package in ("edge", "transcoding"):
        (tmp_path / package).mkdir(exist_ok=True)
        (tmp_path / package / "__init__.py").touch()
    return tmp_path


def test_the_scan_finds_circles_however_the_import_is_written(tmp_path):
    root = _tree(tmp_path, {
        # relative import one way, deferred (inside a function) the other
        "edge/a/__init__.py": "",
        "edge/a/one.py": "from .two import thing\n",
        "edge/a/two.py": "def f():\n    from . import one\n    return one\n",
        # absolute import one way, TYPE_CHECKING-only the other
        "edge/b.py": "import edge.c\n",
        "edge/c.py": "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from edge import b\n",
        # a three-module loop through a package __init__ and a parent-relative import
        "edge/p/__init__.py": "from .q import x\n",
        "edge/p/q.py": "from ..r import y\n",
        "edge/r.py": "from edge.p import z\n",
        # across the two packages
        "transcoding/t.py": "from edge.u import v\n",
        "edge/u.py": "from transcoding import t\n",
        # no circle: a one-way chain, an import of our own package root, a third-party import
        "edge/d.py": "import edge.e\nimport edge\nimport grpc\n",
        "edge/e.py": "from typing import Any\n",
    })
    found = {c.modules: c for c in import_cycles.cycles(root)}
    assert set(found) == {
        frozenset({"edge.a.one", "edge.a.two"}),
        frozenset({"edge.b", "edge.c"}),
        frozenset({"edge.p", "edge.p.q", "edge.r"}),
        frozenset({"transcoding.t", "edge.u"}),
    }
    deferred = found[frozenset({"edge.a.one", "edge.a.two"})].loop
    assert {(e.importer, e.imported, e.deferred) for e in deferred} == {
        ("edge.a.one", "edge.a.two", False), ("edge.a.two", "edge.a.one", True)}
    type_only = found[frozenset({"edge.b", "edge.c"})].loop
    assert {(e.importer, e.type_only) for e in type_only} == {("edge.b", False), ("edge.c", True)}
    assert [e.importer for e in found[frozenset({"edge.p", "edge.p.q", "edge.r"})].loop] == [
        "edge.p", "edge.p.q", "edge.r"]


def test_the_script_exits_nonzero_on_a_circle(tmp_path, capsys):
    root = _tree(tmp_path, {"edge/x.py": "from . import y\n", "edge/y.py": "from . import x\n"})
    assert import_cycles.main(["import_cycles.py", str(root)]) == 1
    assert "edge.x -> edge.y -> edge.x" in capsys.readouterr().out
    clean = _tree(tmp_path / "clean", {"edge/x.py": "from . import y\n", "edge/y.py": ""})
    assert import_cycles.main(["import_cycles.py", str(clean)]) == 0


def test_the_core_imports_no_adapter():
    """edge/core/ is protocol-neutral: no module in it imports a client protocol's adapter
    (edge/protocols/), even deferred or for types only."""
    wrong = [e.describe() for e in import_cycles.edges(ROOT)
             if e.importer.startswith("edge.core") and e.imported.startswith("edge.protocols")]
    assert not wrong, "the core imports an adapter:\n" + "\n".join(wrong)
    assert any(e.importer.startswith("edge.core") for e in import_cycles.edges(ROOT))  # the scan sees the core
