"""What `pip install .` puts on a production machine: one import name, the SQL inside it, no
development dependency (the emulator and graphql-core stay in the checkout)."""

from __future__ import annotations

import email.parser
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
         "--disable-pip-version-check", "--wheel-dir", str(out), str(ROOT)],
        check=True, capture_output=True, timeout=120,
    )  # fmt: skip
    [built] = out.glob("npd_sync-*.whl")
    return built


def test_the_wheel_adds_one_import_name_with_its_sql_inside(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    assert {n.split("/", 1)[0] for n in names} == {
        "listener",
        wheel.name.split("-")[0] + "-0.1.0.dist-info",
    }
    assert "listener/_sql/triggers/capture.sql" in names
    assert "listener/_sql/migrations/001_queue.sql" in names
    assert "listener/_sql/queries/queue.sql" in names
    # The console's templates and static files, as package data.
    for name in ("templates/base.html", "templates/overview.html", "static/htmx.min.js",
                 "static/htmx.LICENSE", "static/console.js", "static/console.css"):  # fmt: skip
        assert f"listener/console/{name}" in names, name
    assert not [n for n in names if n.startswith(("emulator", "tests", "devtools", "bench"))]


def test_graphql_core_is_only_an_extra(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        [meta] = [n for n in archive.namelist() if n.endswith(".dist-info/METADATA")]
        metadata = email.parser.Parser().parsestr(archive.read(meta).decode())
        [entry_points] = [n for n in archive.namelist() if n.endswith("entry_points.txt")]
        scripts = archive.read(entry_points).decode()
    requires = metadata.get_all("Requires-Dist") or []
    graphql = [r for r in requires if r.startswith("graphql-core")]
    assert graphql
    assert all("extra == 'emulator'" in r or 'extra == "emulator"' in r for r in graphql)
    assert "npd-sync = listener.cli:main" in scripts


def test_the_installed_package_imports_and_finds_its_sql_without_the_checkout(
    wheel: Path, tmp_path: Path
) -> None:
    # Unpacked first on the path, as site-packages would hold it: every module imports, the
    # SQL is read from inside the package, and nothing reaches for graphql or the emulator.
    zipfile.ZipFile(wheel).extractall(tmp_path)
    probe = (
        "import importlib, pkgutil, sys\n"
        "import listener\n"
        f"assert listener.__file__.startswith({str(tmp_path)!r}), listener.__file__\n"
        "for m in pkgutil.walk_packages(listener.__path__, 'listener.'):\n"
        "    importlib.import_module(m.name)\n"
        "from listener import sql\n"
        f"assert str(sql.SQL_DIR).startswith({str(tmp_path)!r}), sql.SQL_DIR\n"
        "assert len(sql.queries()) > 30 and sql.migrations() and sql.capture_template()\n"
        "from listener.console import app\n"
        f"assert app.__file__.startswith({str(tmp_path)!r})\n"
        "assert len(app._load_static()) == len(app.STATIC)\n"
        "import jinja2\n"
        "loader = jinja2.PackageLoader('listener.console', 'templates')\n"
        "_, path, _ = loader.get_source(jinja2.Environment(), 'base.html')\n"
        f"assert path.startswith({str(tmp_path)!r}), path\n"
        "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('graphql', 'emulator'))\n"
        "assert not bad, bad\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", probe],
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr


def test_the_emulator_command_says_what_to_do_without_the_emulator(
    wheel: Path, tmp_path: Path
) -> None:
    zipfile.ZipFile(wheel).extractall(tmp_path)
    # A production install has no `emulator` package: block the checkout's with a stub that
    # fails to import, as a missing module would.
    (tmp_path / "emulator.py").write_text(
        "raise ModuleNotFoundError('emulator', name='emulator')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", "from listener.cli import main; main()", "emulator"],
        env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"},
        cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 2
    assert result.stderr.startswith("npd-sync: the emulator is not installed here")
    assert "Traceback" not in result.stderr
