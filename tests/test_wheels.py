"""Every distribution in the repository builds a wheel that works outside the checkout.

Editable installs hide missing package data (schemas, scaffold templates, migrations):
this test builds a wheel of the kernel, each plugins/* and each contrib/* with
``pip wheel --no-deps``, installs them into a clean virtual environment (dependencies
come from the package index) and runs a smoke test there, from a directory outside the
repository.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
import tomllib
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DISTRIBUTIONS = [ROOT, *sorted(p.parent for p in ROOT.glob("plugins/*/pyproject.toml")),
                 *sorted(p.parent for p in ROOT.glob("contrib/*/pyproject.toml"))]

SMOKE = '''
import json, sys
from pathlib import Path
import crmkit
from crmkit.plugins import discover
from crmkit.schemas import schemas_dir
from crmkit.scaffold import template_files

found = discover()
loaded = {name: type(p.load()).__name__ for name, p in found.items()}
print(json.dumps({
    "crmkit": crmkit.__file__,
    "schemas_dir": str(schemas_dir()),
    "schemas": sorted(p.name for p in schemas_dir().glob("*.schema.json")),
    "plugins": {name: p.distribution for name, p in found.items()},
    "loaded": loaded,
    "templates": [path for path, _ in template_files()],
}))
'''


def plugin_names(distribution: Path) -> list[str]:
    project = tomllib.loads((distribution / "pyproject.toml").read_text())["project"]
    return sorted(project.get("entry-points", {}).get("crmkit", {}))


def run(*args: str | Path, cwd: Path, env: dict[str, str] | None = None,
        timeout: float = 300) -> subprocess.CompletedProcess[str]:
    result = subprocess.run([str(a) for a in args], cwd=cwd, env=env, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, f"{' '.join(map(str, args))}:\n{result.stdout}{result.stderr}"
    return result


@pytest.fixture(scope="module")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One wheel per distribution, built the way a release is (not editable)."""
    out = tmp_path_factory.mktemp("wheels")
    # Offline and fast when the build backend is at hand; otherwise pip fetches it.
    isolation = [] if importlib.util.find_spec("hatchling") is None else ["--no-build-isolation"]
    run(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", *isolation,
        "--wheel-dir", out, *DISTRIBUTIONS, cwd=out)
    return out


@pytest.fixture(scope="module")
def installed(wheels: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean virtual environment with every wheel installed; its ``bin`` directory."""
    home = tmp_path_factory.mktemp("venv")
    venv.create(home, with_pip=False, clear=True)
    python = home / "bin" / "python"
    run(sys.executable, "-m", "pip", "--python", python, "install", "--quiet",
        "--disable-pip-version-check", *sorted(wheels.glob("*.whl")), cwd=home, timeout=600)
    return home / "bin"


def clean_env(bin_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CRMKIT_", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    return env


@pytest.mark.slow
def test_every_distribution_builds_a_wheel_with_its_package_data(wheels):
    built = {w.name.split("-")[0] for w in wheels.glob("*.whl")}
    expected = {tomllib.loads((d / "pyproject.toml").read_text())["project"]["name"]
                .replace("-", "_") for d in DISTRIBUTIONS}
    assert built == expected
    with zipfile.ZipFile(next(wheels.glob("crmkit-*.whl"))) as kernel:
        names = set(kernel.namelist())
    assert "crmkit/schemas/customer.schema.json" in names
    assert "crmkit/scaffold/templates/plugin/pyproject.toml.tmpl" in names
    assert "crmkit/migrations/env.py" in names
    for distribution in DISTRIBUTIONS[1:]:
        package = f"crmkit_{distribution.name}"
        wheel = next(wheels.glob(f"{package}-*.whl"))
        with zipfile.ZipFile(wheel) as zf:
            migrations = [n for n in zf.namelist() if n.startswith(f"{package}/migrations/")]
        declares = (distribution / package / "migrations").is_dir()
        assert bool(migrations) == declares, f"{wheel.name} lacks its migrations"


@pytest.mark.slow
def test_the_installed_wheels_work_outside_the_checkout(installed, tmp_path):
    env = clean_env(installed)
    smoke = json.loads(run(installed / "python", "-c", SMOKE, cwd=tmp_path, env=env).stdout)
    site = str(installed.parent / "lib")
    assert smoke["crmkit"].startswith(site), "crmkit was imported from the checkout"
    assert smoke["schemas_dir"].startswith(site) and "site-packages" in smoke["schemas_dir"]
    assert {"config.schema.json", "customer.schema.json"} <= set(smoke["schemas"])
    expected = {name for d in DISTRIBUTIONS[1:] for name in plugin_names(d)}
    assert {"loyalty", "dataquality"} <= expected
    assert set(smoke["plugins"]) == expected
    assert set(smoke["loaded"]) == expected
    assert "pyproject.toml.tmpl" in smoke["templates"]

    crmkit = installed / "crmkit"
    run(crmkit, "init", "deploy", cwd=tmp_path, env=env)
    config = tmp_path / "deploy" / "crmkit.toml"
    for name in sorted(expected):
        run(crmkit, "-c", config, "plugins", "enable", name, cwd=tmp_path, env=env)
    run(crmkit, "-c", config, "db", "upgrade", cwd=tmp_path, env=env)  # plugin migrations
    doctor = json.loads(run(crmkit, "-c", config, "plugins", "doctor", "--json",
                            cwd=tmp_path, env=env).stdout)
    assert doctor["ok"], doctor
    run(crmkit, "-c", config, "doctor", cwd=tmp_path, env=env)
    run(crmkit, "-c", config, "customers", "add", "--kind", "person", "--name", "Ada",
        cwd=tmp_path, env=env)
    top = run(crmkit, "-c", config, "loyalty", "top", cwd=tmp_path, env=env)
    assert "No customer has points yet." in top.stdout

    run(crmkit, "plugins", "new", "demo", "--dir", "demo", cwd=tmp_path, env=env)
    assert (tmp_path / "demo" / "crmkit_demo" / "migrations" / "demo_0001_initial.py").is_file()
    assert (tmp_path / "demo" / "tests" / "test_demo_plugin.py").is_file()
