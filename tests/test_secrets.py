"""Credentials never leave memory: planted secrets in URLs appear in no file a run writes and no output.

s3fs does not take credentials from a URL's userinfo (it reads `KEY:SECRET@bucket` as a bucket name), so
the URL forms that carry planted credentials through real runs are HTTP ones: a corpus source served
read-only by `python -m http.server` as `http://USER:PASSWORD@127.0.0.1:PORT/ds` (aiohttp sends it as basic
auth), and a snapshot policy at a presigned-style URL whose query holds signature, credential and token.
Query strings on a dataset URL cannot be opened by fsspec (the path would be cut), so they go through the
runs as the policy URL and through a failing command; each other form is covered at its call site below.
"""

from __future__ import annotations

import logging
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from servers import free_port, stop_server, wait_for_port

from dreamstream.datasets.errors import DatasetError
from dreamstream.errors import UserError
from dreamstream.redact import RedactingFormatter, redact, redact_tree
from dreamstream.tracking import flatten

SECRETS = ("PLANTUSER", "PLANTPASS", "PLANTSIG", "PLANTCRED", "PLANTTOKEN", "PLANTKEY", "PLANTSECRET")


def presigned(base: str) -> str:
    return (f"{base}?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=PLANTCRED%2F20240101&X-Amz-Signature=PLANTSIG"
            f"&X-Amz-Security-Token=PLANTTOKEN&X-Amz-Expires=600")


@pytest.mark.parametrize("url, shown", [
    ("s3://PLANTKEY:PLANTSECRET@bucket/ds", "s3://***@bucket/ds"),
    ("http://PLANTUSER:PLANTPASS@127.0.0.1:8000/ds/", "http://***@127.0.0.1:8000/ds/"),
    ("gs://b/o?X-Goog-Algorithm=GOOG4&X-Goog-Credential=PLANTCRED&X-Goog-Signature=PLANTSIG",
     "gs://b/o?X-Goog-Algorithm=GOOG4&X-Goog-Credential=***&X-Goog-Signature=***"),
    ("https://acct.blob.core.windows.net/c/x?sv=2022&se=2024&sig=PLANTSIG",
     "https://acct.blob.core.windows.net/c/x?sv=2022&se=2024&sig=***"),
    ("https://h/x?token=PLANTTOKEN&access_token=PLANTTOKEN&key=PLANTKEY&secret=PLANTSECRET&password=PLANTPASS",
     "https://h/x?token=***&access_token=***&key=***&secret=***&password=***"),
    ("s3://bucket/plain/path.tar", "s3://bucket/plain/path.tar"),
])
def test_redact_removes_userinfo_and_secret_query_values(url, shown):
    assert redact(url) == shown
    assert redact(f"cannot read '{url}': denied") == f"cannot read '{shown}': denied"
    assert redact(redact(url)) == shown


def test_presigned_url_keeps_what_is_not_secret():
    shown = redact(presigned("https://bucket.s3.amazonaws.com/ds/dataset.json"))
    assert not any(secret in shown for secret in SECRETS)
    assert "X-Amz-Algorithm=AWS4-HMAC-SHA256" in shown and "X-Amz-Expires=600" in shown


def test_every_sink_redacts():
    url = "s3://PLANTKEY:PLANTSECRET@bucket/ds?X-Amz-Signature=PLANTSIG"
    sinks = {
        "UserError": str(UserError(f"no dataset at {url}")),
        "DatasetError": str(DatasetError("card missing", root=url)),
        "DatasetError.reason": DatasetError(f"source {url} changed").reason,
        "MLflow params": str(flatten({"train": {"data": url}, "out": url})),
        "lineage": str(redact_tree({"sources": [{"url": url}], "recipe": {"output": {"url": url}}})),
        "log line": RedactingFormatter(logging.Formatter("%(message)s")).format(
            logging.LogRecord("x", logging.INFO, __file__, 1, "reading %s", (url,), None)),
    }
    leaks = {name: text for name, text in sinks.items() if any(s in text for s in SECRETS)}
    assert not leaks


# -- real runs -------------------------------------------------------------------------------------------------


@pytest.fixture
def http_folder(tmp_path: Path) -> Iterator[tuple[Path, int]]:
    """A folder served read-only over HTTP on loopback: (folder, port)."""
    folder = tmp_path / "served"
    folder.mkdir()
    port = free_port()
    process = subprocess.Popen([sys.executable, "-m", "http.server", str(port), "--bind", "127.0.0.1"],
                               cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_for_port(port, process, "http.server")
        yield folder, port
    finally:
        stop_server(process)


def cli(cwd: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess:
    """The real command line, run in `cwd` (so that whatever it writes there, e.g. mlruns/, is scanned)."""
    result = subprocess.run([sys.executable, "-m", "dreamstream.cli", *args], capture_output=True, text=True,
                            timeout=300, cwd=cwd)
    assert (result.returncode == 0) == ok, f"{args}:\n{result.stdout}\n{result.stderr}"
    return result


def leaks_in(folder: Path, outputs: list[str]) -> list[str]:
    """Every file under `folder` and every output text that holds a planted secret."""
    found = [f"{path}: {s}" for path in sorted(folder.rglob("*")) if path.is_file()
             for s in SECRETS if s.encode() in path.read_bytes()]
    return found + [f"output {i}: {s}" for i, text in enumerate(outputs) for s in SECRETS if s in text]


@pytest.mark.slow
def test_collect_and_corpus_runs_write_no_planted_secret(tmp_path, http_folder):
    served, port = http_folder
    mlflow_db = tmp_path / "mlflow.db"
    dead = free_port()  # nothing listens: every poll of the snapshot URL fails and is logged
    policy = presigned(f"http://PLANTUSER:PLANTPASS@127.0.0.1:{dead}/run/snapshots")
    collected = cli(tmp_path, "collect", "--env", "minigrid_empty", "--out", str(served / "ds"), "--steps", "300",
                    "--no-progress", "--policy", policy, "--set", "collect.wait_for_snapshot=true",
                    "--set", "collect.poll_seconds=0.1", "--set", f"collect.mlflow_tracking_uri=sqlite:///{mlflow_db}")
    assert "acting randomly" in collected.stderr and "http://***@127.0.0.1" in collected.stderr

    recipe = tmp_path.parent / f"{tmp_path.name}-recipe.yaml"  # the run's input, outside the scanned folder
    source = f"http://PLANTUSER:PLANTPASS@127.0.0.1:{port}/ds"
    recipe.write_text(yaml.safe_dump({
        "name": "secret_mix", "output": {"url": str(tmp_path / "corpus")},
        "sources": [{"url": source, "label": "random"}],
    }))
    built = cli(tmp_path, "corpus", str(recipe), "--workers", "1", "--json")
    assert (tmp_path / "corpus" / "dataset.json").exists() and "http://***@127.0.0.1" in built.stdout

    failed = cli(tmp_path, "stats", presigned(f"http://PLANTUSER:PLANTPASS@127.0.0.1:{dead}/nothing"), ok=False)

    with sqlite3.connect(mlflow_db) as db:  # the params really went to the store, redacted
        params = dict(db.execute("select key, value from params").fetchall())
    assert params["collect.policy"].startswith("http://***@127.0.0.1") and "X-Amz-Signature=***" in params[
        "collect.policy"]
    outputs = [r.stdout + r.stderr for r in (collected, built, failed)]
    assert not leaks_in(tmp_path, outputs)
