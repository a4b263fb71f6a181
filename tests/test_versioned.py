"""dreamstream.versioned: numbered files + latest.json, the snapshot envelope's checks, and locating a run's file."""

from __future__ import annotations

import pytest

from dreamstream.datasets.spec import ActionSpec, EpisodeSpec, FieldSpec
from dreamstream.errors import UserError
from dreamstream.versioned.files import VersionedFiles
from dreamstream.versioned.formats import check_snapshot, checkpoint_payload, is_checkpoint, snapshot_payload
from dreamstream.versioned.locate import locate

SPEC = EpisodeSpec(observations={"state": FieldSpec(shape=(4,), dtype="float32", kind="vector")},
                   action=ActionSpec(kind="discrete", n=2))


def test_saves_prunes_and_loads_by_version(tmp_path):
    files = VersionedFiles(str(tmp_path), "checkpoint", keep=2)
    assert files.latest_version() is None and files.load() is None
    for step in (1, 2, 3):
        files.save({"step": step}, step)
    assert files.save({"step": "again"}, 3).endswith("checkpoint-000000003.pt")  # a saved version is kept
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == ["checkpoint-000000002.pt", "checkpoint-000000003.pt"]
    assert files.latest_version() == 3 and files.load() == {"step": 3} and files.load(2) == {"step": 2}
    with pytest.raises(UserError, match="version 1 is missing"):
        files.load(1)
    (tmp_path / "checkpoint-000000003.pt").write_bytes(b"damaged")
    with pytest.raises(UserError, match=r"checkpoint-000000003.pt is not a loadable checkpoint file: .*weights_only"):
        files.load()


def test_the_trainer_s_payloads_pass_their_checks():
    payload = snapshot_payload(7, "dreamer", "dreamer_actor", SPEC, {}, {})
    assert check_snapshot(payload) is payload and payload["spec"] == SPEC.to_json()
    checkpoint = checkpoint_payload(7, {"agent": {}}, {}, {}, SPEC, {})
    assert is_checkpoint(checkpoint) and not is_checkpoint(payload) and checkpoint["step"] == 7


@pytest.mark.parametrize(("change", "reason"), [
    ({"format": "other"}, "not a dreamstream policy snapshot"),
    ({"format_version": 1}, "format_version 1; this code reads 2"),
    ({"version": True}, "version must be a non-negative integer"),
    ({"version": -1}, "version must be a non-negative integer"),
    ({"name": "../x"}, "name must be"),
])
def test_an_envelope_this_code_cannot_read_is_refused(change, reason):
    with pytest.raises(UserError, match=reason):
        check_snapshot({**snapshot_payload(7, "dreamer", "dreamer_actor", SPEC, {}, {}), **change})


def test_every_kind_of_location_means_one_file(tmp_path):
    run = tmp_path / "run"
    VersionedFiles(str(run / "snapshots"), "policy").save({"kind": "snapshot"}, 5)
    assert locate(str(run)).load("file") == {"kind": "snapshot"}  # no checkpoints: the latest snapshot
    VersionedFiles(str(run / "checkpoints"), "checkpoint").save({"kind": "checkpoint"}, 4)
    name = "checkpoint-000000004.pt"
    for url in (str(run), f"file://{run}/", str(run / "checkpoints"), str(run / "checkpoints" / name)):
        found = locate(url)
        assert found.path.endswith(f"checkpoints/{name}") and found.load("file") == {"kind": "checkpoint"}
    assert locate(str(run / "snapshots")).url == f"{run}/snapshots/policy-000000005.pt"
    with pytest.raises(UserError, match="no checkpoint at .*: expected a .pt file, a folder with latest.json"):
        locate(str(tmp_path / "empty"))
