"""Shared fixtures: real object-store emulators on loopback, a private MLflow store, fsspec hygiene.

S3 is a `moto_server` process (s3fs speaks HTTP to it); GCS is a `gcp-storage-emulator` process (gcsfs
with anonymous tokens). Both are found through the standard environment variables, which spawned
processes (collector workers, Dask workers, DataLoader workers) inherit: nothing is passed by hand.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from servers import free_port, start_server, stop_server

os.environ.setdefault("GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT", "false")


def set_fsspec_options(protocol: str, **options: str) -> None:
    """Set fsspec defaults for a protocol here and, through FSSPEC_* variables, in child processes."""
    import fsspec.config

    for key, value in options.items():
        os.environ[f"FSSPEC_{protocol.upper()}_{key.upper()}"] = value
        fsspec.config.conf.setdefault(protocol, {})[key] = value


def clear_fsspec_options(protocol: str) -> None:
    import fsspec.config

    for key in list(os.environ):
        if key.startswith(f"FSSPEC_{protocol.upper()}_"):
            del os.environ[key]
    fsspec.config.conf.pop(protocol, None)


@pytest.fixture(autouse=True)
def _fresh_fsspec_instances() -> Iterator[None]:
    """fsspec caches filesystem instances per arguments; tests must not see each other's."""
    import fsspec

    yield
    fsspec.AbstractFileSystem.clear_instance_cache()
    fsspec.filesystem("memory").store.clear()


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free loopback port, configured for s3fs through the environment."""
    port = free_port()
    process = start_server(["moto_server", "-H", "127.0.0.1", "-p", str(port)], port, "moto_server")
    endpoint = f"http://127.0.0.1:{port}"
    saved = {k: os.environ.get(k) for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION",
                                             "AWS_ENDPOINT_URL")}
    os.environ.update(AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
                      AWS_DEFAULT_REGION="us-east-1", AWS_ENDPOINT_URL=endpoint)
    set_fsspec_options("s3", endpoint_url=endpoint)
    try:
        yield endpoint
    finally:
        clear_fsspec_options("s3")
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        stop_server(process)


@pytest.fixture(scope="session")
def gcs_endpoint() -> Iterator[str]:
    """A gcp-storage-emulator on a free loopback port, configured for gcsfs through the environment."""
    port = free_port()
    process = start_server(
        ["gcp-storage-emulator", "start", "--host", "127.0.0.1", "--port", str(port), "--in-memory", "-q"],
        port, "gcp-storage-emulator",
    )
    endpoint = f"http://127.0.0.1:{port}"
    saved = os.environ.get("STORAGE_EMULATOR_HOST")
    os.environ["STORAGE_EMULATOR_HOST"] = endpoint
    set_fsspec_options("gcs", token="anon")
    try:
        yield endpoint
    finally:
        clear_fsspec_options("gcs")
        if saved is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = saved
        stop_server(process)


def _new_bucket(protocol: str) -> str:
    import fsspec

    bucket = f"ds-{uuid.uuid4().hex[:12]}"
    fsspec.filesystem(protocol).mkdir(bucket)
    return f"{protocol}://{bucket}"


@pytest.fixture
def s3_url(s3_endpoint: str) -> str:
    """A fresh, empty bucket on the moto server: `s3://ds-<random>`."""
    return _new_bucket("s3")


@pytest.fixture
def gcs_url(gcs_endpoint: str) -> str:
    """A fresh, empty bucket on the GCS emulator: `gs://ds-<random>`."""
    return _new_bucket("gs")


@pytest.fixture
def mlflow_uri(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A private sqlite MLflow store, so tests never touch ./mlflow.db."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    return uri


def run_dreamstream(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Run the real command line in a subprocess; fail with its output unless it exits 0."""
    result = subprocess.run([sys.executable, "-m", "dreamstream.cli", *args], capture_output=True, text=True,
                            timeout=timeout)
    assert result.returncode == 0, f"dreamstream {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}"
    return result


@pytest.fixture(scope="session")
def dreamstream():
    """`dreamstream(*args)`: the real CLI in a subprocess, asserted to exit 0; returns the CompletedProcess."""
    return run_dreamstream
