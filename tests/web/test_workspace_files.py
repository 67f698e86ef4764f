"""The workspace's recent jobs: when the retention sweep deletes each job's files, and "Delete
now" (the owner only, with the session's CSRF token)."""

from __future__ import annotations

from datetime import timedelta

from fastapi.testclient import TestClient

from removeany.context import Context
from removeany.jobs import repository as jobs_repo
from tests.conftest import eval_image
from tests.helpers import make_api_key, make_user
from tests.web.test_pages import login, session_csrf, text_of


def _job(client: TestClient, key: str) -> str:
    photo = eval_image("object", "davis16_dog_00030")
    response = client.post(
        "/api/v1/jobs",
        headers={"X-Api-Key": key},
        data={"wait": "true"},
        files={"file": (photo.name, photo.read_bytes())},
    )
    assert response.json()["status"] == "succeeded", response.text
    job_id: str = response.json()["id"]
    return job_id


def test_recent_jobs_say_when_files_go_and_delete_them_now(
    client: TestClient, ctx: Context
) -> None:
    ctx.settings.retention_hours = 48
    owner = make_user(ctx, "ada@example.com")
    job_id = _job(client, make_api_key(ctx, owner))
    other_job = _job(client, make_api_key(ctx, make_user(ctx, "eve@example.com")))
    with ctx.db.transaction() as session:
        job = jobs_repo.get(session, job_id)
        assert job is not None
        until = (job.created_at + timedelta(hours=48)).strftime("%Y-%m-%d %H:%M UTC")

    login(client, "ada@example.com")
    page = client.get("/app")
    text = text_of(page.text)
    assert f"Files deleted automatically after {until}" in text
    assert f'action="/app/jobs/{job_id}/delete-files"' in page.text

    # Without the session's token: refused, nothing deleted.
    forged = client.post(f"/app/jobs/{job_id}/delete-files", data={"csrf_token": "forged"})
    assert forged.status_code == 403
    assert client.get(f"/api/v1/jobs/{job_id}/result").status_code == 200

    # Someone else's job: not found.
    token = session_csrf(client)
    theirs = client.post(f"/app/jobs/{other_job}/delete-files", data={"csrf_token": token})
    assert theirs.status_code == 404

    done = client.post(
        f"/app/jobs/{job_id}/delete-files", data={"csrf_token": token}, follow_redirects=False
    )
    assert done.status_code == 303 and done.headers["location"].startswith("/app?deleted=1")
    page = client.get(done.headers["location"])
    text = text_of(page.text)
    assert "The job's photo and result were deleted." in text
    assert "Files deleted 20" in text
    assert f'action="/app/jobs/{job_id}/delete-files"' not in page.text
    assert f'src="/api/v1/jobs/{job_id}/result"' not in page.text  # no broken thumbnail
    assert client.get(f"/api/v1/jobs/{job_id}/result").status_code == 410
    files = client.get(f"/api/v1/jobs/{job_id}/files").json()
    assert files["deleted"] is True and files["reason"] == "user"
    # The job's own page offers nothing that is gone (it showed two broken images and a
    # download answering 410 in JSON): it says the files were deleted, and what to do.
    job_page = client.get(f"/jobs/{job_id}")
    assert f"/api/v1/jobs/{job_id}/" not in job_page.text
    text = text_of(job_page.text)
    assert "This file was deleted: images are kept only for a limited time" in text
    assert "Files deleted 20" in text and "Process another photo" in text
