"""The README and docs/ stand on their own: no link leaves the repository, every relative link resolves, and the
architecture page names the packages, modules and classes that exist."""

from __future__ import annotations

import re

from tests.conftest import REPO

PAGES = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)#]+)(?:#[^)]*)?\)")


def test_no_page_points_outside_the_repository() -> None:
    for page in PAGES:
        text = page.read_text()
        assert "shared/" not in text, f"{page.name} refers to shared/, which a clone does not have"
        for target in LINK.findall(text):
            assert "://" not in target, f"{page.name} links outside the repository: {target}"
            resolved = (page.parent / target).resolve()
            assert resolved.is_relative_to(REPO), f"{page.name}: {target} leaves the repository"
            assert resolved.exists(), f"{page.name}: {target} does not exist"


def test_the_architecture_page_names_the_packages_that_exist() -> None:
    text = (REPO / "docs" / "architecture.md").read_text()
    block = text.split("```", 2)[1]
    named = {
        name.strip().rstrip("/").removesuffix(".py")
        for line in block.strip().splitlines()
        for name in re.split(r"\s{2,}", line)[0].split("|")
    }
    packages = {p.name for p in (REPO / "reconciler").iterdir() if (p / "__init__.py").exists()}
    modules = {p.stem for p in (REPO / "reconciler").glob("*.py") if p.stem not in {"__init__", "__main__"}}
    assert named == packages | modules


MODULE = re.compile(r"`((?:[a-z_]+/)*[a-z_]+\.py)`")
DOTTED = re.compile(r"`([a-z_]+(?:/[a-z_]+)*)\.(?!py`)([A-Za-z_][A-Za-z0-9_]*)`")  # `system/cpus.usable_cpus`
# a CamelCase name of two words or more: `HealthChecker`, `FakeConnector[...]` (not a condition like `Degraded`)
CLASS = re.compile(r"`([A-Z][a-z0-9]+[A-Z][A-Za-z0-9]*)(?:\[[^`]*\])?`")


def _source(path: str) -> str | None:
    for base in (REPO / "reconciler", REPO):
        if (base / path).is_file():
            return (base / path).read_text()
    return None


def test_every_module_and_class_the_architecture_page_names_exists() -> None:
    """A file, a module.name or a class the page names is in the code (paths under reconciler/ or the repository)."""
    text = (REPO / "docs" / "architecture.md").read_text()
    missing = [path for path in sorted(set(MODULE.findall(text))) if _source(path) is None]
    for module, name in sorted(set(DOTTED.findall(text))):
        source = _source(f"{module}.py")
        if source is not None and not re.search(rf"^(?:async )?(?:def|class) {name}\b|^{name}\b", source, re.M):
            missing.append(f"{module}.{name}")
    code = "\n".join(p.read_text() for p in (REPO / "reconciler").rglob("*.py"))
    missing += [name for name in sorted(set(CLASS.findall(text))) if not re.search(rf"\bclass {name}\b", code)]
    assert missing == []
