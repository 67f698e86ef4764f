"""constraints.txt, the exact versions scripts/bootstrap.sh installs, stays in step with
pyproject.toml: every declared dependency is pinned at a version pyproject allows, and the
environment the tests run in is the pinned one (what CI tested is what a clean clone gets)."""

from __future__ import annotations

import importlib.metadata
import tomllib
from pathlib import Path
from typing import Any

import pytest
from packaging.requirements import Requirement
from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import Version

REPO = Path(__file__).resolve().parents[1]
REFRESH = "refresh the pins: scripts/lock.sh, then make test (docs/deployment.md, Upgrading)"


def read_pins(text: str) -> dict[NormalizedName, Version]:
    """Each `name==version` line; anything else but comments is refused, not skipped."""
    pins: dict[NormalizedName, Version] = {}
    for line in text.splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, separator, version = line.partition("==")
        if not separator or name.strip() != name:
            raise ValueError(f"not an exact pin: {line!r}")
        if canonicalize_name(name) in pins:
            raise ValueError(f"pinned twice: {name}")
        pins[canonicalize_name(name)] = Version(version)
    return pins


def project_requirements(pyproject: dict[str, Any]) -> list[Requirement]:
    """What `pip install -e ".[dev]"` asks for: the dependencies and the dev extra."""
    project = pyproject["project"]
    lines = [*project["dependencies"], *project["optional-dependencies"]["dev"]]
    return [Requirement(line) for line in lines]


def build_requirements(pyproject: dict[str, Any]) -> list[Requirement]:
    """The build backend of the editable install (bootstrap's --build-constraint)."""
    return [Requirement(line) for line in pyproject["build-system"]["requires"]]


def pin_problems(requirements: list[Requirement], pins: dict[NormalizedName, Version]) -> list[str]:
    problems = []
    for requirement in requirements:
        pinned = pins.get(canonicalize_name(requirement.name))
        if pinned is None:
            problems.append(f"{requirement} is not pinned")
        elif not requirement.specifier.contains(pinned, prereleases=True):
            problems.append(f"{requirement} does not allow the pinned {pinned}")
    return problems


def installed_closure(requirements: list[Requirement]) -> dict[NormalizedName, Version | None]:
    """Every distribution these requirements pull in here (None: not installed), following
    extras and environment markers through the installed metadata."""
    found: dict[NormalizedName, Version | None] = {}
    visited: set[tuple[NormalizedName, frozenset[str]]] = set()
    pending = [(requirement, frozenset({""})) for requirement in requirements]
    while pending:
        requirement, parent_extras = pending.pop()
        if requirement.marker and not any(
            requirement.marker.evaluate({"extra": extra}) for extra in parent_extras
        ):
            continue
        name = canonicalize_name(requirement.name)
        extras = frozenset({"", *requirement.extras})
        if (name, extras) in visited:
            continue
        visited.add((name, extras))
        try:
            distribution = importlib.metadata.distribution(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
            continue
        found[name] = Version(distribution.version)
        pending += [(Requirement(line), extras) for line in distribution.requires or []]
    return found


@pytest.fixture(scope="module")
def pyproject() -> dict[str, Any]:
    return tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))


@pytest.fixture
def pins() -> dict[NormalizedName, Version]:
    return read_pins((REPO / "constraints.txt").read_text(encoding="utf-8"))


def test_every_declared_dependency_is_pinned_at_a_version_pyproject_allows(
    pyproject: dict[str, Any], pins: dict[NormalizedName, Version]
) -> None:
    declared = project_requirements(pyproject) + build_requirements(pyproject)
    assert pin_problems(declared, pins) == [], REFRESH


def test_a_missing_or_disallowed_pin_is_reported(pins: dict[NormalizedName, Version]) -> None:
    requirements = [Requirement("numpy>=1.26"), Requirement("fastapi>=0.110"), Requirement("rich")]
    del pins[canonicalize_name("numpy")]
    pins[canonicalize_name("fastapi")] = Version("0.100.0")

    assert pin_problems(requirements, pins) == [
        "numpy>=1.26 is not pinned",
        "fastapi>=0.110 does not allow the pinned 0.100.0",
    ]


def test_a_range_is_not_taken_for_a_pin() -> None:
    with pytest.raises(ValueError, match="not an exact pin: 'numpy>=2'"):
        read_pins("numpy>=2\n")


def test_this_environment_is_the_pinned_one(
    pyproject: dict[str, Any], pins: dict[NormalizedName, Version]
) -> None:
    """Catches a lock that leaves a transitive dependency free, and a venv that was not
    installed by scripts/bootstrap.sh (whose `pip --constraint` installs exactly the pins)."""
    drift = {
        str(name): f"here {installed or 'not installed'}, pinned {pins.get(name, 'nowhere')}"
        for name, installed in installed_closure(project_requirements(pyproject)).items()
        if installed is None or pins.get(name) != installed
    }
    assert drift == {}, f"{REFRESH}; or reinstall the venv with scripts/bootstrap.sh test"
