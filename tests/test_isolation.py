"""`scaling` and `runs_db` work without torch: the light install stays light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# A meta-path finder that refuses torch: unlike sys.modules[m] = None, libraries that probe for torch
# with try/except ImportError (scipy.stats does) keep working, exactly as on a machine without torch.
BLOCK = (
    "import sys\n"
    "class _Block:\n"
    "    def find_spec(self, name, path=None, target=None):\n"
    "        if name.split('.')[0] in ('torch', 'torchvision', 'timm'):\n"
    "            raise ImportError(f'blocked: {name}')\n"
    "sys.meta_path.insert(0, _Block())\n"
)


def run(code: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {"SCALING_DB": str(tmp_path / "runs.sqlite"), "PATH": "/usr/bin:/bin", "COLUMNS": "200"}
    return subprocess.run([sys.executable, "-c", BLOCK + code], capture_output=True, text=True, env=env,
                          cwd=tmp_path, timeout=300)


def test_packages_resolve_inside_this_checkout() -> None:
    import runs_db
    import scaling

    assert Path(scaling.__file__).resolve().is_relative_to(ROOT)
    assert Path(runs_db.__file__).resolve().is_relative_to(ROOT)


def test_import_and_help_without_torch(tmp_path: Path) -> None:
    code = (
        "import runs_db, scaling, scaling.cli, scaling.forms.result, scaling.questions.projection, train\n"
        "from typer.testing import CliRunner\n"
        "r = CliRunner().invoke(scaling.cli.app, ['--help'])\n"
        "assert r.exit_code == 0, r.output\n"
        "assert not any(m in sys.modules for m in ('torch', 'timm'))\n"
        "print('ok')\n"
    )
    proc = run(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_fit_runs_without_torch(tmp_path: Path) -> None:
    code = (
        "sys.argv = ['scaling', 'fit', '--form', 'poly1', '--json']\n"
        "from scaling.cli import main\n"
        "main()\n"
    )
    proc = run(code, tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert '"scaling.fit/v1"' in proc.stdout


def test_python_dash_m_scaling(tmp_path: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "scaling", "--help"], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "project" in proc.stdout
