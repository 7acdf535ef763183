"""tests/unit/ mirrors the package: the unit test of ``reconciler/<package>/<module>.py`` is
``tests/unit/<package>/test_<module>.py`` (of a top-level module, ``tests/unit/test_<module>.py``)."""

from __future__ import annotations

from tests.conftest import REPO

UNIT = REPO / "tests" / "unit"
# test files that are not one module's: the whole loader's corpus and properties, every kind's model, the docs
ACROSS_MODULES = {"loading/test_invalid_corpus", "loading/test_properties", "model/test_models", "test_docs"}


def test_every_unit_test_file_is_named_after_the_module_it_tests() -> None:
    strays = []
    for test in sorted(UNIT.rglob("test_*.py")):
        relative = test.relative_to(UNIT).with_suffix("")
        if str(relative) in ACROSS_MODULES or relative.name == "test_layout":
            continue
        module = relative.name.removeprefix("test_")
        folder = REPO / "reconciler" / relative.parent
        # a top-level module's tests may be split by command: test_cli_agent.py, test_cli_help.py
        candidates = [module, module.split("_")[0]] if relative.parent == relative.parent.parent else [module]
        if not any((folder / f"{name}.py").is_file() for name in candidates):
            strays.append(str(relative))
    assert strays == [], "name each unit test file after the module it tests (tests/unit/<package>/test_<module>.py)"


def test_every_package_with_unit_tests_has_its_folder() -> None:
    for folder in sorted(p for p in UNIT.iterdir() if p.is_dir() and p.name != "__pycache__"):
        assert (REPO / "reconciler" / folder.name / "__init__.py").is_file(), f"{folder.name} is no package"
        assert (folder / "__init__.py").is_file(), f"tests/unit/{folder.name} needs an __init__.py"
