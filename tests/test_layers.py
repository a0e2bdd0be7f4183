"""The package's one-way layers: core ← libraries ← stages ← bin (see README, Development).

Every module's imports are read with ``ast`` (module-level, inside functions and under
``TYPE_CHECKING`` alike) and checked against the layer of the importing module:

* core imports only core;
* a library imports core and libraries;
* a stage imports core, libraries and itself, and another stage only along
  :data:`STAGE_EDGES` (a trial is a training run; evaluation reads conversions);
* ``bin`` (thin argparse mains) may import anything.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from conftest import REPO

PACKAGE = REPO / "vc_toolkit"
CORE = {
    "vc_toolkit",
    "vc_toolkit.config",
    "vc_toolkit.errors",
    "vc_toolkit.log",
    "vc_toolkit.io",
    "vc_toolkit.paths",
    "vc_toolkit.checkpoint",
    "vc_toolkit.device",
    "vc_toolkit.records",
    "vc_toolkit.lock",
    "vc_toolkit.parallel",
    "vc_toolkit.registry",
}
LIBRARIES = {
    "vc_toolkit.data",
    "vc_toolkit.features",
    "vc_toolkit.models",
    "vc_toolkit.vocoder",
    "vc_toolkit.plots",
    "vc_toolkit.text",
}
STAGES = {
    "vc_toolkit.prepare",
    "vc_toolkit.preprocess",
    "vc_toolkit.train",
    "vc_toolkit.infer",
    "vc_toolkit.eval",
    "vc_toolkit.tune",
}
ENTRY = {"vc_toolkit.bin"}
STAGE_EDGES = {("vc_toolkit.tune", "vc_toolkit.train"), ("vc_toolkit.eval", "vc_toolkit.infer")}


def unit(module: str) -> str:
    """The layer unit a module belongs to: ``vc_toolkit.<top>`` (or ``vc_toolkit`` itself).

    Example: ``vc_toolkit.train.loop`` → ``vc_toolkit.train``.
    """
    parts = module.split(".")
    return ".".join(parts[:2]) if len(parts) > 1 else parts[0]


def layer(module: str) -> str:
    """``core``, ``library``, ``stage`` or ``entry``; ``unplaced`` for a unit no layer lists."""
    u = unit(module)
    for name, units in (("core", CORE), ("library", LIBRARIES), ("stage", STAGES)):
        if u in units:
            return name
    return "entry" if u in ENTRY else "unplaced"


def module_name(path: Path, root: Path) -> str:
    rel = path.relative_to(root).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def imports(path: Path, module: str) -> list[tuple[int, str]]:
    """``(line, imported module)`` of every ``vc_toolkit`` import in the file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for a in node.names:
                # ``from vc_toolkit import log`` imports the module vc_toolkit.log;
                # ``from vc_toolkit import __version__`` a name of the package itself
                submodule = base == "vc_toolkit" and not a.name.startswith("__")
                found.append((node.lineno, f"{base}.{a.name}" if submodule else base))
    return [(line, name) for line, name in found if name.split(".")[0] == "vc_toolkit"]


def allowed(src: str, dst: str) -> bool:
    """Whether module ``src`` may import module ``dst``."""
    a, b = layer(src), layer(dst)
    if a == "entry":
        return True
    if a == "core":
        return b == "core"
    if a == "library":
        return b in ("core", "library")
    if a == "stage":
        return (
            b in ("core", "library")
            or unit(src) == unit(dst)
            or (unit(src), unit(dst)) in (STAGE_EDGES)
        )
    return False


def violations(root: Path) -> list[str]:
    """Every import of the package under ``root`` that breaks the layering, one line each."""
    out = []
    for path in sorted((root / "vc_toolkit").rglob("*.py")):
        src = module_name(path, root)
        if layer(src) == "unplaced":
            out.append(f"{path.relative_to(root)}: {unit(src)} is in no layer")
            continue
        for line, dst in imports(path, src):
            if layer(dst) == "unplaced" and unit(dst) != unit(src):
                out.append(f"{path.relative_to(root)}:{line}: imports {dst}, in no layer")
            elif not allowed(src, dst):
                out.append(
                    f"{path.relative_to(root)}:{line}: {layer(src)} {unit(src)} imports "
                    f"{layer(dst)} {unit(dst)} ({dst})"
                )
    return out


def test_every_import_follows_the_layers():
    bad = violations(REPO)
    assert not bad, "imports against the layering:\n" + "\n".join(bad)


def _write(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


@pytest.mark.parametrize(
    ("rel", "text", "expected"),
    [
        ("vc_toolkit/models/x.py", "from vc_toolkit.train import loop\n", "library"),
        (
            "vc_toolkit/paths.py",
            "def f():\n    from vc_toolkit.models import build_model\n",
            "core",
        ),
        ("vc_toolkit/train/x.py", "import vc_toolkit.infer.convert\n", "stage vc_toolkit.train"),
        ("vc_toolkit/infer/x.py", "from vc_toolkit.eval import metrics\n", "stage"),
        ("vc_toolkit/features/x.py", "from ..prepare import stage\n", "library"),
        ("vc_toolkit/newstage/x.py", "X = 1\n", "in no layer"),
    ],
)
def test_a_new_import_against_the_layers_is_caught(tmp_path, rel, text, expected):
    root = tmp_path / "repo"
    _write(root, rel, text)
    _write(root, "vc_toolkit/__init__.py", "")
    bad = violations(root)
    assert len(bad) == 1 and expected in bad[0], bad


@pytest.mark.parametrize(
    ("rel", "text"),
    [
        ("vc_toolkit/tune/x.py", "from vc_toolkit.train.loop import Trainer\n"),
        ("vc_toolkit/eval/x.py", "from vc_toolkit.infer.pack import load_tag_bundle\n"),
        ("vc_toolkit/bin/x.py", "from vc_toolkit.eval import stage\n"),
        ("vc_toolkit/vocoder/x.py", "from vc_toolkit import registry, log\n"),
        ("vc_toolkit/train/x.py", "from . import loop\nfrom vc_toolkit.models import x\n"),
    ],
)
def test_the_allowed_edges_pass(tmp_path, rel, text):
    root = tmp_path / "repo"
    _write(root, rel, text)
    assert violations(root) == []
