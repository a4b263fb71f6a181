"""Every command the documentation shows runs exactly as typed, from the root of a fresh copy of the repo.

Each page (README.md, docs/*.md, configs/**/*.yaml) is a script: its commands run in order, in one fresh
copy of the tracked files (relative paths, no data/, runs/ or mlflow.db left from elsewhere), with `.venv`
on PATH as after `source .venv/bin/activate`. The work is cut short the way a user can: DREAMSTREAM_SMOKE=1
(dreamstream/smoke.py). What CI lacks is replaced by its local equivalent with the same words: `s3://bucket`
is a moto server, `gs://bucket` the GCS emulator, `tcp://127.0.0.1:8786` a `dask scheduler` with one
worker. A new command in a page is a new test; a page command that cannot run here must be in NOT_RUN
with the reason, or this file fails.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from documented import ROOT, Command, commands, pages
from servers import start_server, stop_server, wait_for_port

NOT_RUN = {
    "make test": "the suite itself: CI runs it (.ci/run) on a fresh clone",
    "python3.11 -m venv .venv && .venv/bin/pip install torch":
        "installs a CUDA build of torch from the network; `make setup` runs the CPU install on every CI run",
}
SCHEDULER_PORT = 8786  # the address the pages show for an existing Dask cluster
TIMEOUT_S = 600

PAGES = {str(page.relative_to(ROOT)): commands(page) for page in pages()}
PAGES = {name: found for name, found in PAGES.items() if found}


def test_every_page_command_runs_or_says_why_not():
    shown = {c.words for found in PAGES.values() for c in found}
    assert set(NOT_RUN) <= shown, f"NOT_RUN names commands no page shows: {set(NOT_RUN) - shown}"
    assert len(shown) > 20, "the extraction found almost no commands: is the page format still the one parsed?"


def fresh_copy(target: Path) -> Path:
    """The tracked (and new, unignored) files of this checkout, as a fresh clone has them, plus the venv."""
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (target / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target / name)
    (target / ".venv").symlink_to(ROOT / ".venv")
    stamp = (ROOT / ".venv" / ".installed").stat().st_mtime
    os.utime(target / "pyproject.toml", (stamp - 60, stamp - 60))  # `make` must not reinstall the shared venv
    return target


@pytest.fixture(scope="module")
def stores(s3_endpoint: str, gcs_endpoint: str) -> Iterator[None]:
    """`s3://bucket` and `gs://bucket`, as the pages name them, on the emulators."""
    import fsspec

    for protocol in ("s3", "gs"):
        fs = fsspec.filesystem(protocol)
        if not fs.exists("bucket"):
            fs.mkdir("bucket")
    yield


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory) -> Iterator[None]:
    """A `dask scheduler` at the pages' address with one `dask worker`, when some page needs it."""
    if not any(f"127.0.0.1:{SCHEDULER_PORT}" in c.text for found in PAGES.values() for c in found):
        yield
        return
    bin_dir = Path(sys.executable).parent
    scheduler = start_server([str(bin_dir / "dask"), "scheduler", "--host", "127.0.0.1", "--port",
                              str(SCHEDULER_PORT), "--dashboard-address", ":0"], SCHEDULER_PORT, "dask scheduler")
    worker = subprocess.Popen([str(bin_dir / "dask"), "worker", f"tcp://127.0.0.1:{SCHEDULER_PORT}", "--nworkers",
                               "1", "--nthreads", "1", "--dashboard-address", ":0", "--local-directory",
                               str(tmp_path_factory.mktemp("dask-worker"))],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    wait_for_port(SCHEDULER_PORT, scheduler, "dask scheduler")
    try:
        yield
    finally:
        stop_server(worker)
        stop_server(scheduler)


def user_environment(clone: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "PYTEST_", "DREAMSTREAM_"))}
    env["PATH"] = f"{clone / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    env["DREAMSTREAM_SMOKE"] = "1"
    return env


def run_as_typed(command: Command, clone: Path) -> None:
    started = time.monotonic()
    result = subprocess.run(["bash", "-c", command.text], cwd=clone, env=user_environment(clone),
                            capture_output=True, text=True, timeout=TIMEOUT_S)
    output = result.stdout + result.stderr
    where = f"{command.id}: `{command.text}` exited {result.returncode}:\n{output[-4000:]}"
    errors = [line for line in command.output if "error:" in line]
    if errors:
        assert result.returncode != 0, where
        for line in errors:
            assert line in output, f"{where}\nexpected the page's output line: {line}"
    else:
        assert result.returncode == 0, where
    print(f"{command.id}: {time.monotonic() - started:.1f} s: {command.words}")  # shown with pytest -s


@pytest.mark.slow
@pytest.mark.parametrize("page", sorted(PAGES))
def test_page_commands_run_as_typed(page, tmp_path, stores, dask_cluster):
    clone = fresh_copy(tmp_path / "clone")
    ran = 0
    for command in PAGES[page]:
        if command.words in NOT_RUN:
            continue
        run_as_typed(command, clone)
        ran += 1
    assert ran, f"{page}: every command is in NOT_RUN"
