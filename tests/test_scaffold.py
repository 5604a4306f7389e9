"""``crmkit plugins new``: what it generates, that it installs and passes its own tests,
and that bad input leaves nothing behind."""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from importlib.util import find_spec
from pathlib import Path

import pytest
from click.testing import CliRunner

from crmkit import __version__, scaffold
from crmkit.cli import cli
from crmkit.scaffold import ScaffoldError, kernel_specifier, render

ROOT = Path(__file__).resolve().parent.parent
EXPECTED_FILES = {
    ".gitignore", "CHANGELOG.md", "README.md", "pyproject.toml",
    "crmkit_acme/__init__.py", "crmkit_acme/cli.py", "crmkit_acme/models.py",
    "crmkit_acme/migrations/acme_0001_initial.py",
    "tests/conftest.py", "tests/test_acme_plugin.py",
}


def new(*args: str):
    return CliRunner().invoke(cli, ["plugins", "new", *args])


def files_under(directory: Path) -> set[str]:
    return {p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file()}


def test_generates_a_complete_package(tmp_path):
    target = tmp_path / "crmkit-acme"
    result = new("acme", "--dir", str(target))
    assert result.exit_code == 0, result.output
    assert f"Next: cd {target} && pip install -e . && pytest" in result.output
    assert files_under(target) == EXPECTED_FILES
    project = tomllib.loads((target / "pyproject.toml").read_text())
    assert project["project"]["name"] == "crmkit-acme"
    assert project["project"]["entry-points"]["crmkit"] == {"acme": "crmkit_acme"}
    assert project["project"]["dependencies"] == [f"crmkit{kernel_specifier(__version__)}"]
    package = (target / "crmkit_acme" / "__init__.py").read_text()
    assert f'kernel="{kernel_specifier(__version__)}"' in package
    for hook in ("register_config_schema", "register_migrations", "register_commands",
                 "customer_created", "export_customer_data", "erase_customer_data"):
        assert f"def {hook}(" in package
    migration = (target / "crmkit_acme/migrations/acme_0001_initial.py").read_text()
    assert 'branch_labels: str | Sequence[str] | None = ("acme",)' in migration
    assert 'op.create_table(\n        "acme_note"' in migration
    assert '__tablename__ = "acme_note"' in (target / "crmkit_acme/models.py").read_text()
    tests = (target / "tests/test_acme_plugin.py").read_text()
    assert tests.index("def test_the_entry_point_is_discovered") < tests.index("def test_a_")
    assert 'pytest_plugins = ["crmkit.testing"]' in (target / "tests/conftest.py").read_text()
    assert "{{" not in "".join((target / f).read_text() for f in EXPECTED_FILES)


def test_missing_parent_directories_are_created(tmp_path):
    target = tmp_path / "vendor" / "plugins" / "crmkit-acme"
    assert new("acme", "--dir", str(target)).exit_code == 0
    assert files_under(target) == EXPECTED_FILES
    assert [p.name for p in target.parent.iterdir()] == ["crmkit-acme"]  # no staging left


def test_the_default_directory_is_crmkit_name(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert new("shop_sync").exit_code == 0
    assert (tmp_path / "crmkit-shop-sync" / "crmkit_shop_sync" / "cli.py").is_file()


@pytest.mark.slow
def test_a_generated_plugin_installs_with_pip_and_its_own_tests_pass(tmp_path):
    """Exactly what a vendor does: generate, pip install, pytest, no edits.

    The wheel is installed into a directory of its own (``--target``, ``--no-deps``;
    offline with ``--no-build-isolation`` when hatchling is installed), and pytest runs
    from elsewhere, so the tests
    import the *installed* package: a file missing from the wheel (a migration, say)
    fails them. They run on every database in CRMKIT_TEST_DATABASE_URLS, each session in
    its own database.
    """
    target = tmp_path / "crmkit-acme"
    assert new("acme", "--dir", str(target)).exit_code == 0
    site = tmp_path / "site"
    # Offline when the build backend is installed here; otherwise pip fetches hatchling.
    isolation = [] if find_spec("hatchling") is None else ["--no-build-isolation"]
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", *isolation,
         "--no-input", "--target", str(site), str(target)],
        capture_output=True, text=True, timeout=300,
    )
    assert install.returncode == 0, install.stdout + install.stderr
    assert (site / "crmkit_acme" / "migrations" / "acme_0001_initial.py").is_file()
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    env = {**os.environ, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "import crmkit_acme; print(crmkit_acme.__file__)"],
        cwd=elsewhere, env=env, check=True, capture_output=True, text=True,
    )
    assert where.stdout.startswith(str(site))
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", str(target)],
        cwd=elsewhere, env=env, capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    summary = run.stdout.strip().splitlines()[-1]
    assert " passed" in summary and "skipped" not in summary and "failed" not in summary
    lint = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache", str(target)],
                          cwd=target, capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout + lint.stderr


@pytest.mark.parametrize(("name", "message"), [
    ("Acme", "not a valid plugin name"),
    ("1acme", "not a valid plugin name"),
    ("my-plugin", "not a valid plugin name"),
    ("acme!", "not a valid plugin name"),
    ("", "not a valid plugin name"),
    ("class", "is a Python keyword"),
    ("crmkit", "taken by crmkit itself"),
    ("customers", "taken by crmkit itself"),
    ("a" * 31, "at most 30"),
    ("loyalty", "already installed"),  # contrib/loyalty is installed in the test venv
])
def test_a_bad_name_is_refused_and_nothing_is_written(tmp_path, name, message):
    result = new(name, "--dir", str(tmp_path / "out" / "plugin"))
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.iterdir()) == []


def test_a_name_that_clashes_with_an_installed_plugin_is_refused(tmp_path, crmkit_plugins):
    crmkit_plugins.install("acme", object())
    result = new("acme", "--dir", str(tmp_path / "x"))
    assert result.exit_code == 1
    assert "a plugin named 'acme' is already installed" in result.output


def test_an_existing_directory_is_never_touched(tmp_path):
    target = tmp_path / "crmkit-acme"
    target.mkdir()
    (target / "mine.txt").write_text("keep me")
    result = new("acme", "--dir", str(target))
    assert result.exit_code == 1
    assert "already exists" in result.output
    assert files_under(target) == {"mine.txt"}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["crmkit-acme"]


def test_a_failure_mid_generation_leaves_nothing_behind(tmp_path, monkeypatch):
    written: list[Path] = []
    real_write = scaffold._write

    def failing_write(path: Path, text: str) -> None:
        if len(written) == 4:
            raise OSError(28, "No space left on device")
        written.append(path)
        real_write(path, text)

    monkeypatch.setattr(scaffold, "_write", failing_write)
    target = tmp_path / "new" / "parents" / "crmkit-acme"
    result = new("acme", "--dir", str(target))
    assert result.exit_code == 1
    assert "No space left on device" in result.output
    assert "nothing was written" in result.output
    assert len(written) == 4 and all(not p.exists() for p in written)
    assert list(tmp_path.iterdir()) == []  # the parents it created are gone too


def test_a_template_with_an_unknown_placeholder_is_an_error():
    with pytest.raises(ScaffoldError, match="unknown placeholder {{nmae}}"):
        render("name = {{nmae}}", {"name": "acme"}, "pyproject.toml.tmpl")


@pytest.mark.parametrize(("version", "spec"), [
    ("0.1.0", ">=0.1,<0.2"), ("0.7.3", ">=0.7,<0.8"), ("1.4.0", ">=1.4,<2"),
])
def test_kernel_specifier(version, spec):
    assert kernel_specifier(version) == spec


# -- the tutorial in docs/writing-plugins.md shows code that exists ---------------------------

EXCERPT = re.compile(r"<!-- excerpt: (?P<path>\S+) -->\n```\w*\n(?P<code>.*?)\n```", re.S)


def tutorial_excerpts() -> list[tuple[str, str]]:
    text = (ROOT / "docs" / "writing-plugins.md").read_text(encoding="utf-8")
    return [(m["path"], m["code"]) for m in EXCERPT.finditer(text)]


def test_the_tutorial_has_excerpts_of_the_loyalty_plugin():
    paths = {path for path, _ in tutorial_excerpts()}
    assert {"contrib/loyalty/crmkit_loyalty/__init__.py", "contrib/loyalty/tests/conftest.py",
            "contrib/loyalty/crmkit_loyalty/migrations/loyalty_0001_account.py"} <= paths


@pytest.mark.parametrize(("path", "code"), tutorial_excerpts())
def test_every_tutorial_excerpt_is_in_the_file_it_names(path, code):
    """Each ``<!-- excerpt: FILE -->`` block appears in FILE; ``...`` lines mark gaps."""
    source = (ROOT / path).read_text(encoding="utf-8")
    position = 0
    for chunk in re.split(r"\n\.\.\.\n", code):
        found = source.find(chunk, position)
        assert found >= 0, f"docs/writing-plugins.md shows code that {path} lacks:\n{chunk}"
        position = found + len(chunk)
