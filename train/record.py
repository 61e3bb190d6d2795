"""The run record: ``run.json`` in the run's output folder (``runs_db/run.json@1``) and the database row.

The record is written atomically at the start (status RUNNING), and again at the end (COMPLETED, or
FAILED with the reason in the ``failure`` tag). It is inserted into the run database only when that file
is on a local filesystem: SQLite's locking is unreliable on network filesystems (NFS, Lustre, GPFS...), so
there each run leaves its ``run.json`` and ``scaling runs import`` collects them.
"""

from __future__ import annotations

import os
import platform
import socket
import subprocess
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path

import runs_db
from train.checkpoint import atomic_write_json

NETWORK_FS = {"nfs", "nfs4", "cifs", "smb", "smb3", "smbfs", "lustre", "gpfs", "beegfs", "ceph", "glusterfs",
              "fuse.sshfs", "fuse.glusterfs", "fuse.s3fs", "afs", "9p", "panfs", "wekafs"}
PACKAGES = ("torch", "torchvision", "timm", "numpy", "av", "scikit-learn", "humanlike-scaling")


def utc_now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def code_version() -> str:
    """``git:<sha>[+dirty]`` of the checkout this package runs from, else the installed version."""
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
                               capture_output=True, text=True, timeout=10, check=True).stdout.strip()
        return f"git:{sha}{'+dirty' if dirty else ''}"
    except (OSError, subprocess.SubprocessError):
        return f"humanlike-scaling {_version('humanlike-scaling') or 'unknown'}"


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def package_versions() -> dict[str, str]:
    out = {"python": platform.python_version()}
    for name in PACKAGES:
        v = _version(name)
        if v:
            out[name] = v
    return out


def host() -> str:
    return socket.gethostname()


def filesystem_type(path: Path) -> str | None:
    """Type of the filesystem holding ``path`` (from /proc/mounts, longest mount point); None if unknown."""
    try:
        mounts = Path("/proc/mounts").read_text().splitlines()
    except OSError:
        return None
    target = Path(os.path.abspath(path))
    while not target.exists() and target != target.parent:
        target = target.parent
    target = target.resolve()
    best, fstype = -1, None
    for line in mounts:
        parts = line.split()
        if len(parts) < 3:
            continue
        mount = parts[1].replace("\\040", " ")
        if (target == Path(mount) or Path(mount) in target.parents) and len(mount) > best:
            best, fstype = len(mount), parts[2]
    return fstype


def is_local(path: Path) -> bool:
    fstype = filesystem_type(path)
    return fstype is None or fstype.lower() not in NETWORK_FS


def write_run_json(out_dir: Path, record: dict[str, object]) -> Path:
    path = out_dir / "run.json"
    atomic_write_json(path, record)
    return path


def insert_into_db(db_path: Path | None, record: Mapping[str, object]) -> tuple[str | None, str]:
    """Insert the record when the database is local: (run id or None, what happened, for the user)."""
    path = Path(db_path) if db_path is not None else runs_db.default_db_path()
    if not is_local(path):
        return None, (f"run database {path} is on a {filesystem_type(path)} filesystem: not inserted; "
                      "import the run.json with `scaling runs import`")
    return runs_db.insert_run_record(path, record), f"recorded in {path}"


def argv() -> str:
    return " ".join(sys.argv)
