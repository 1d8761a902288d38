"""The repository layout is the architecture: checked, so it cannot drift."""

from __future__ import annotations

import ast
import shutil
import subprocess
import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DISTRIBUTIONS = sorted(p.parent for p in ROOT.glob("*/pyproject.toml")) + sorted(
    p.parent for p in ROOT.glob("*/*/pyproject.toml")
)
PLUGIN_SOURCES = sorted((ROOT / "plugins").glob("*/src/**/*.py")) + sorted(
    (ROOT / "examples").glob("*/src/**/*.py")
)


def test_every_distribution_has_its_own_project_and_src_layout() -> None:
    names = set()
    for folder in DISTRIBUTIONS:
        project = tomllib.loads((folder / "pyproject.toml").read_text())["project"]
        names.add(project["name"])
        assert project["requires-python"] == ">=3.11", folder
        assert (folder / "src").is_dir() and (folder / "README.md").is_file(), folder
    assert {
        "jimu-core",
        "jimu-sdk",
        "jimu-cli",
        "jimu-crm",
        "jimu-loyalty",
        "jimu-ticketing",
        "jimu-erp",
        "jimu-reports",
    } <= names


@pytest.mark.parametrize("source", PLUGIN_SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_plugins_import_only_the_sdk(source: Path) -> None:
    tree = ast.parse(source.read_text(), filename=str(source))
    for node in ast.walk(tree):
        modules = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            modules = [node.module]
        for module in modules:
            top = module.split(".")[0]
            assert top != "jimu", (
                f"{source.relative_to(ROOT)} imports {module}; plugins import only jimu_sdk"
            )


def test_each_distribution_builds_its_own_wheel(tmp_path: Path) -> None:
    uv = shutil.which("uv") or str(ROOT / ".tools" / "bin" / "uv")
    result = subprocess.run(
        [uv, "build", "--all-packages", "--wheel", "--out-dir", str(tmp_path), "--quiet"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    wheels = sorted(p.name.split("-0.1.0")[0] for p in tmp_path.glob("*.whl"))
    expected = sorted(
        tomllib.loads((folder / "pyproject.toml").read_text())["project"]["name"].replace("-", "_")
        for folder in DISTRIBUTIONS
        if folder != ROOT
    )
    assert wheels == expected
