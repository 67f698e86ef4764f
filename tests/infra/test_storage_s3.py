"""S3-compatible storage against a real S3 API server (moto's server mode on 127.0.0.1):
objects, presigned downloads, and a job whose result download redirects to the bucket."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from removeany.accounts.models import User
from removeany.app import create_app
from removeany.context import Context, build_context
from removeany.infra.settings import Settings
from removeany.infra.storage import S3Storage, StorageUnavailable, make_storage
from removeany.privacy.models import JobFileDeletion
from removeany.privacy.service import delete_account, run_retention
from tests.batches._images import photo_paths, small_photo
from tests.helpers import closed_port, make_api_key, make_user

moto_server = pytest.importorskip("moto.server")


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


def s3_settings(base: Settings, endpoint: str, bucket: str) -> Settings:
    return base.model_copy(
        update={
            "storage_backend": "s3",
            "s3_bucket": bucket,
            "s3_endpoint_url": endpoint,
            "s3_region": "us-east-1",
            "s3_access_key_id": "testing",
            "s3_secret_access_key": "testing",
            "s3_prefix": "tenant-a",
        }
    )


def test_objects_round_trip_and_presigned_urls_work(s3_endpoint: str, tmp_path: Path) -> None:
    settings = s3_settings(Settings(data_dir=tmp_path), s3_endpoint, "objects")
    storage = make_storage(settings)
    assert isinstance(storage, S3Storage)
    storage.ensure_bucket()
    assert not storage.exists("results/abc")
    storage.put("results/abc", b"\x89PNG result")
    assert storage.exists("results/abc") and storage.get("results/abc") == b"\x89PNG result"
    listed = storage.client.list_objects_v2(Bucket="objects")["Contents"]
    assert [o["Key"] for o in listed] == ["tenant-a/results/abc"]
    url = storage.download_url("results/abc", filename="cat.png", media_type="image/png")
    assert url is not None and "X-Amz-Signature" in url
    fetched = httpx.get(url)
    assert fetched.status_code == 200 and fetched.content == b"\x89PNG result"
    assert fetched.headers["content-disposition"] == 'attachment; filename="cat.png"'
    storage.delete("results/abc")
    assert not storage.exists("results/abc")
    with pytest.raises(FileNotFoundError):
        storage.get("results/abc")
    with pytest.raises(ValueError):
        storage.put("../escape", b"x")


def test_job_results_download_from_the_bucket(
    s3_endpoint: str, settings: Settings, tmp_path: Path
) -> None:
    bucket = f"jobs-{tmp_path.name.lower().replace('_', '-')}"[:60]
    ctx = build_context(s3_settings(settings, s3_endpoint, bucket))
    assert isinstance(ctx.storage, S3Storage)
    ctx.storage.ensure_bucket()
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
            assert ctx.storage.get(f"originals/{job['id']}") == photo
            redirect = client.get(job["result_url"], headers=headers, follow_redirects=False)
            assert redirect.status_code == 307
            # ... as the API's document says (it listed only a 200 with no content type).
            documented = client.get("/api/openapi.json").json()["paths"]
            answers = documented["/api/v1/jobs/{job_id}/result"]["get"]["responses"]
            assert "Location" in answers["307"]["headers"]
            assert {"image/png", "image/jpeg", "image/webp"} <= set(answers["200"]["content"])
            result = httpx.get(redirect.headers["location"])
            assert result.status_code == 200 and result.content.startswith(b"\x89PNG")
            assert result.content == ctx.storage.get(f"results/{job['id']}.1")  # attempt 1
    finally:
        ctx.close()


def test_empty_settings_mean_unset_as_the_deployment_docs_write_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`REMOVEANY_S3_ENDPOINT_URL=` (empty for AWS) and empty keys: AWS's endpoint and the
    standard credential chain, not an "Invalid endpoint" crash or requests signed with ""."""
    for name, value in {
        "STORAGE_BACKEND": "s3",
        "S3_BUCKET": "removeany-files",
        "S3_REGION": "eu-central-1",
        "S3_ENDPOINT_URL": "",
        "S3_ACCESS_KEY_ID": "",
        "S3_SECRET_ACCESS_KEY": "",
    }.items():
        monkeypatch.setenv(f"REMOVEANY_{name}", value)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIAFROMTHEENVIRONMENT")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "from-the-environment")
    storage = make_storage(Settings(data_dir=tmp_path))
    url = storage.download_url("results/abc", filename="cat.png", media_type="image/png")
    assert url is not None
    assert httpx.URL(url).host.endswith(".amazonaws.com")
    assert "X-Amz-Credential=AKIAFROMTHEENVIRONMENT%2F" in url


@contextmanager
def bucket_and_outage(
    settings: Settings, endpoint: str, bucket: str, **update: object
) -> Iterator[tuple[Context, Context]]:
    """The platform on a fresh bucket, and the same platform with the bucket unreachable."""
    scaled = s3_settings(settings, endpoint, bucket).model_copy(update=update)
    ctx = build_context(scaled)
    down = build_context(
        scaled.model_copy(update={"s3_endpoint_url": f"http://127.0.0.1:{closed_port()}"})
    )
    assert isinstance(ctx.storage, S3Storage)
    ctx.storage.ensure_bucket()
    try:
        yield ctx, down
    finally:
        down.close()
        ctx.close()


def finished_job_files(ctx: Context, user: User) -> list[str]:
    """The stored original and result of a job of ``user``'s, run to the end."""
    with TestClient(create_app(ctx)) as client:
        job = client.post(
            "/api/v1/jobs",
            headers={"X-Api-Key": make_api_key(ctx, user)},
            data={"wait": "true"},
            files={"file": ("p.jpg", small_photo(photo_paths(1)[0], 200))},
        ).json()
    assert job["status"] == "succeeded", job
    return [f"originals/{job['id']}", f"results/{job['id']}.1"]


def test_retention_during_a_bucket_outage_deletes_the_files_on_the_next_sweep(
    s3_endpoint: str, settings: Settings, tmp_path: Path
) -> None:
    """A sweep whose deletes fail must not record the files as gone: nothing would delete
    them again, and the bucket would keep them past the retention period for good."""
    bucket = f"retention-{tmp_path.name.lower().replace('_', '-')}"[:60]
    with bucket_and_outage(settings, s3_endpoint, bucket, retention_hours=1e-6) as (ctx, down):
        files = finished_job_files(ctx, make_user(ctx, credits=3))
        job_id = files[0].split("/")[1]
        with pytest.raises(StorageUnavailable):
            run_retention(down)
        with ctx.db.transaction() as session:
            assert session.get(JobFileDeletion, job_id) is None
        assert all(ctx.storage.exists(key) for key in files)
        assert run_retention(ctx) == 1
        assert not any(ctx.storage.exists(key) for key in files)
        with ctx.db.transaction() as session:
            assert session.get(JobFileDeletion, job_id) is not None


def test_an_account_deleted_during_a_bucket_outage_is_deleted_whole_on_retry(
    s3_endpoint: str, settings: Settings, tmp_path: Path
) -> None:
    """Deleting an account while the bucket is down must not answer 'deleted' (or 503) over
    an erased account whose photos stay in the bucket: the deletion fails whole and the
    person's retry, with the bucket back, removes the account and its files."""
    bucket = f"erase-{tmp_path.name.lower().replace('_', '-')}"[:60]
    with bucket_and_outage(settings, s3_endpoint, bucket) as (ctx, down):
        user = make_user(ctx, credits=3)
        files = finished_job_files(ctx, user)
        with pytest.raises(StorageUnavailable):
            delete_account(down, user.id, "correct horse battery")
        with ctx.db.transaction() as session:
            assert session.get(User, user.id).email == user.email  # type: ignore[union-attr]
        assert all(ctx.storage.exists(key) for key in files)
        assert delete_account(ctx, user.id, "correct horse battery") == user.email
        assert not any(ctx.storage.exists(key) for key in files)
