"""Encryption at rest: with REMOVEANY_ENCRYPT_FILES the files on disk are ciphertext, the app
still serves the real images, and a tampered or moved file is refused."""

from __future__ import annotations

from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from removeany.app import create_app
from removeany.context import build_context
from removeany.infra.settings import Settings
from removeany.infra.storage import EncryptedStorage, LocalStorage
from tests.batches._images import photo_paths, small_photo
from tests.helpers import make_api_key, make_user


def test_job_files_are_ciphertext_on_disk_and_plain_through_the_app(settings: Settings) -> None:
    ctx = build_context(settings.model_copy(update={"encrypt_files": True}))
    assert isinstance(ctx.storage, EncryptedStorage)
    try:
        with TestClient(create_app(ctx)) as client:
            headers = {"X-Api-Key": make_api_key(ctx, make_user(ctx, credits=3))}
            photo = small_photo(photo_paths(1)[0], 200)
            job = client.post(
                "/api/v1/jobs",
                headers=headers,
                data={"wait": "true"},
                files={"file": ("p.jpg", photo)},
            ).json()
            assert job["status"] == "succeeded", job
            on_disk = (settings.files_dir / "originals" / job["id"]).read_bytes()
            assert on_disk.startswith(EncryptedStorage.HEADER)
            assert photo not in on_disk and b"JFIF" not in on_disk
            result_on_disk = (settings.files_dir / "results" / f"{job['id']}.1").read_bytes()
            assert b"PNG" not in result_on_disk[:64]
            result = client.get(job["result_url"], headers=headers)
            assert result.status_code == 200 and result.content.startswith(b"\x89PNG")
            assert ctx.storage.get(f"originals/{job['id']}") == photo
    finally:
        ctx.close()


def test_tampered_moved_or_foreign_key_files_do_not_decrypt(tmp_path: Path) -> None:
    disk = LocalStorage(tmp_path)
    storage = EncryptedStorage(disk, "instance secret")
    storage.put("results/a", b"the result")
    assert storage.get("results/a") == b"the result"
    disk.put("results/b", disk.get("results/a"))  # copied to another key
    with pytest.raises(ValueError, match="does not decrypt"):
        storage.get("results/b")
    raw = bytearray(disk.get("results/a"))
    raw[-1] ^= 1
    disk.put("results/a", bytes(raw))
    with pytest.raises(ValueError, match="does not decrypt"):
        storage.get("results/a")
    storage.put("results/c", b"secret")
    with pytest.raises(ValueError, match="does not decrypt"):
        EncryptedStorage(disk, "another secret").get("results/c")
    disk.put("results/old", b"stored before encryption was on")
    assert storage.get("results/old") == b"stored before encryption was on"
    assert storage.download_url("results/c", filename="c.png", media_type="image/png") is None
