"""A shop-sized batch through a real `removeany serve` (embedded default: SQLite, local files,
in-process worker), measured from outside as a customer and an operator see it.

    PYTHONPATH=src .venv/bin/python benchmarks/batch_scale.py [--items 500] [--restart-at 100]
        [--process 0] [--workers 1]

Makes --items JPEG photos of 1 to 4 MP from the evaluation photos (../shared/eval object and
clean, cropped and enlarged, with a little noise so they compress like camera photos; cached in
the temp folder) in shop folders, the same file name in several folders, Chinese names, plus
a text file and a broken JPEG: about 160 MB for 500. Then, against one server on a free port
with a fresh data folder, with remove_background at size=preview (1 credit an item, the
cheapest work, since the point is counting):

- baseline: another user's single job with nothing else running;
- credits: the ZIP, and the same photos as files (the /batches page's file chooser), from a
  user whose balance covers half of them: status, sentence, nothing held or stored, and the
  server's peak RSS while it received and read the upload;
- the ZIP from a user who can pay: time to the 202, peak RSS, the batch list meanwhile;
- fairness: another user's single job while the batch is queued;
- progress: GET /api/v1/batches/{id} (counts, eta_seconds) against the observed pace;
- restart: at --restart-at items finished the server is stopped (SIGTERM, as Ctrl-C or
  systemd stop), at twice that it is killed (SIGKILL, as a crash), each time started again;
  the batch runs on to the end (or to --process items, then is cancelled); the ledger is read
  from the database: no job captured twice, charged = the succeeded items' cost;
- results: the ZIP streamed to disk, the server's peak RSS meanwhile, NOT-INCLUDED.txt;
- cancel: the photos as files again, cancelled at once: every hold released.

RSS is read from /proc (VmRSS sampled every 20 ms, and VmHWM after clear_refs).
"""

from __future__ import annotations

import argparse
import io
import json
import os
import random
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import zipfile
from pathlib import Path
from typing import Any

import httpx
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
EVAL_DIR = Path(os.environ.get("REMOVEANY_EVAL_DIR", REPO.parent / "shared" / "eval"))
OPTIONS = {"size": "preview"}
CACHE = Path(tempfile.gettempdir()) / "removeany-batch-scale"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sources() -> list[Path]:
    found = sorted(
        p
        for group in ("object", "clean")
        for p in (EVAL_DIR / group).glob("*")
        if p.suffix in (".jpg", ".png") and not p.name.endswith(".alpha.png")
    )
    if not found:
        sys.exit(f"no evaluation photos under {EVAL_DIR}")
    return found


def shop_photo(source: Path, rng: random.Random) -> bytes:
    """A 1-4 MP JPEG as a phone or a shop camera makes it: the photo cropped a little and
    enlarged to the drawn size (with a little sensor noise, so it compresses like one)."""
    with Image.open(source) as opened:
        im = opened.convert("RGB")
    w, h = im.size
    crop = rng.uniform(0.8, 1.0)
    cw, ch = int(w * crop), int(h * crop)
    left, top = rng.randint(0, w - cw), rng.randint(0, h - ch)
    im = im.crop((left, top, left + cw, top + ch))
    megapixels = rng.uniform(1.0, 4.0)
    scale = (megapixels * 1e6 / (cw * ch)) ** 0.5
    im = im.resize((round(cw * scale), round(ch * scale)), Image.Resampling.BICUBIC)
    noise = Image.effect_noise(im.size, 6).convert("RGB")
    im = Image.blend(im, noise, 0.06)
    buf = io.BytesIO()
    im.save(buf, "JPEG", quality=90)
    return buf.getvalue()


def member_names(count: int) -> list[str]:
    """Shop folders; the same name in two folders; Chinese names (UTF-8 flagged members)."""
    names = []
    for i in range(count):
        folder = ("鞋子", "bags", "bags/summer", "服装 2026")[i % 4]
        stem = f"商品-{i // 4:04d}" if i % 3 == 0 else f"item-{i // 4:04d}"
        names.append(f"{folder}/{stem}.jpg")
    return names


def make_zip(count: int) -> Path:
    CACHE.mkdir(exist_ok=True)
    target = CACHE / f"shop-{count}.zip"
    if target.exists():
        return target
    rng = random.Random(7)
    pool = sources()
    partial = target.with_suffix(".part")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_STORED) as archive:
        for i, name in enumerate(member_names(count)):
            archive.writestr(name, shop_photo(pool[i % len(pool)], rng))
        archive.writestr("README.txt", "not a photo\n")
        archive.writestr("bags/broken.jpg", b"\xff\xd8\xff\xe0 truncated")
    partial.rename(target)
    return target


class Server:
    """`removeany serve` in its own process group; RSS read from /proc."""

    def __init__(self, env: dict[str, str], log: Path):
        self.env = env
        self.log = log
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "removeany", "serve", "--port", str(self.port)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline:
            try:
                httpx.get(f"{self.base}/api/v1/prices", timeout=2)
                return
            except httpx.HTTPError:
                time.sleep(0.2)
        sys.exit(f"the server did not start; see {self.log}")

    def rss_mb(self) -> float:
        return _status_kb(self.pid, "VmRSS") / 1024

    def reset_peak(self) -> None:
        Path(f"/proc/{self.pid}/clear_refs").write_text("5")

    def peak_mb(self) -> float:
        return _status_kb(self.pid, "VmHWM") / 1024

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def kill(self) -> None:
        assert self.proc is not None
        os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.kill()


def _status_kb(pid: int, field: str) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    return 0


class PeakSampler:
    """The server's RSS sampled every 20 ms while a block runs (and the kernel's peak)."""

    def __init__(self, server: Server):
        self.server = server
        self.samples: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakSampler:
        self.before = self.server.rss_mb()
        self.server.reset_peak()
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max([self.server.peak_mb(), *self.samples])

    def _run(self) -> None:
        while not self._stop.wait(0.02):
            self.samples.append(self.server.rss_mb())


def cli(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "removeany", *args],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    return done.stdout


def new_user(env: dict[str, str], email: str, credits: int) -> str:
    out = cli(env, "users", "create", email, "--password", "benchmark pw 1", "--api-key")
    if credits:
        cli(env, "admin", "credits", email, str(credits), "--reason", "benchmark")
    return out.strip().splitlines()[-1]


def upload_zip(base: str, key: str, archive: Path, name: str) -> httpx.Response:
    with archive.open("rb") as fh:
        return httpx.post(
            f"{base}/api/v1/batches",
            headers={"X-Api-Key": key},
            data={"service": "remove_background", "options": json.dumps(OPTIONS), "name": name},
            files={"archive": (archive.name, fh, "application/zip")},
            timeout=3600,
        )


def upload_files(base: str, key: str, files: list[Any]) -> httpx.Response:
    return httpx.post(
        f"{base}/api/v1/batches",
        headers={"X-Api-Key": key},
        data={"options": json.dumps(OPTIONS), "name": "as-files"},
        files=files,
        timeout=3600,
    )


def available(base: str, key: str) -> tuple[int, int]:
    body = httpx.get(f"{base}/api/v1/credits", headers={"X-Api-Key": key}, timeout=30).json()
    return int(body["available"]), int(body["held"])


def get_batch(base: str, key: str, batch_id: str) -> dict[str, Any]:
    body: dict[str, Any] = httpx.get(
        f"{base}/api/v1/batches/{batch_id}", headers={"X-Api-Key": key}, timeout=60
    ).json()
    return body


def watch_listing(
    base: str, key: str, stop: threading.Event, seen: list[str], waits: list[float]
) -> None:
    """What the uploader's batch list shows while the upload is received and unpacked, and
    how long each answer took (every request waits while the batch's items are written in
    one transaction: SQLite's write lock)."""
    while not stop.wait(0.5):
        start = time.perf_counter()
        try:
            listed = httpx.get(f"{base}/api/v1/batches", headers={"X-Api-Key": key}, timeout=60)
            seen.append(str(len(listed.json())))
        except httpx.HTTPError as exc:
            seen.append(type(exc).__name__)
        waits.append(time.perf_counter() - start)


def single_job(base: str, key: str, photo: bytes) -> tuple[float, str]:
    """A single job of another user: seconds from its upload until it finished."""
    start = time.perf_counter()
    sent = httpx.post(
        f"{base}/api/v1/jobs",
        headers={"X-Api-Key": key},
        data={"service": "remove_background", **OPTIONS},
        files={"file": ("single.jpg", photo, "image/jpeg")},
        timeout=120,
    )
    sent.raise_for_status()
    job_id = sent.json()["id"]
    while True:
        job = httpx.get(f"{base}/api/v1/jobs/{job_id}", headers={"X-Api-Key": key}).json()
        if job["status"] in ("succeeded", "failed", "cancelled"):
            return time.perf_counter() - start, str(job["status"])
        time.sleep(0.1)


def processed(batch: dict[str, Any]) -> int:
    """Items run to the end (a cancelled one took no time)."""
    return int(batch["counts"]["succeeded"] + batch["counts"]["failed"])


def ledger(db: Path, email: str) -> dict[str, int]:
    """The shop's ledger read from the database: entries by kind, captures per job, and the
    credits its succeeded jobs cost."""
    with sqlite3.connect(db) as conn:
        (user_id,) = conn.execute("SELECT id FROM users WHERE email = ?", (email,)).fetchone()
        kinds = conn.execute(
            "SELECT kind, COALESCE(SUM(amount), 0), COUNT(*) FROM credit_entries"
            " WHERE user_id = ? GROUP BY kind",
            (user_id,),
        ).fetchall()
        (twice,) = conn.execute(
            "SELECT COUNT(*) FROM (SELECT reference FROM credit_entries WHERE user_id = ?"
            " AND kind = 'capture' GROUP BY reference, lot_id HAVING COUNT(*) > 1)",
            (user_id,),
        ).fetchone()
        (cost,) = conn.execute(
            "SELECT COALESCE(SUM(cost), 0) FROM jobs WHERE user_id = ? AND status = 'succeeded'",
            (user_id,),
        ).fetchone()
    out = {f"{kind} sum": int(total) for kind, total, _ in kinds}
    out.update({f"{kind} entries": int(n) for kind, _, n in kinds})
    return {**out, "jobs captured twice": int(twice), "succeeded jobs' cost": int(cost)}


def main() -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--items", type=int, default=500)
    parser.add_argument("--restart-at", type=int, default=100, help="items finished")
    parser.add_argument("--process", type=int, default=0, help="items, then cancel (0: all)")
    parser.add_argument("--workers", type=int, default=1, help="REMOVEANY_INLINE_WORKERS")
    args = parser.parse_args()

    t0 = time.perf_counter()
    archive = make_zip(args.items)
    print(
        f"ZIP: {args.items} photos + 2 files that are not images,"
        f" {archive.stat().st_size / 1e6:.0f} MB (made or cached in"
        f" {time.perf_counter() - t0:.0f} s: {archive})"
    )
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("REMOVEANY_")},
            "REMOVEANY_DATA_DIR": str(data),
            "REMOVEANY_SIGNUP_CREDITS": "0",
            "REMOVEANY_INLINE_WORKERS": str(args.workers),
            "PYTHONPATH": str(REPO / "src"),
        }
        keys = {
            "shop": new_user(env, "shop@example.com", 2 * args.items + 10),
            "poor": new_user(env, "poor@example.com", args.items // 2),
            "other": new_user(env, "other@example.com", 10),
        }
        server = Server(env, data / "serve.log")
        server.start()
        try:
            run(args, server, archive, data, keys)
        finally:
            server.stop()


def run(
    args: argparse.Namespace, server: Server, archive: Path, data: Path, keys: dict[str, str]
) -> None:
    base, shop = server.base, keys["shop"]
    photo = shop_photo(sources()[0], random.Random(1))
    alone, _ = single_job(base, keys["other"], photo)
    print(f"\n[baseline] another user's single job alone: {alone:.1f} s")

    # Credits: a batch larger than the balance, as a ZIP and as files (the /batches page's
    # file chooser). Refused after the upload is read: the server's peak RSS is the upload's.
    with zipfile.ZipFile(archive) as zf:
        files = [("files", (n, zf.read(n), "image/jpeg")) for n in zf.namelist()]
    originals = data / "files" / "originals"
    for how in ("ZIP", "files"):
        before, stored = available(base, keys["poor"]), len(list(originals.glob("*")))
        with PeakSampler(server) as rss:
            start = time.perf_counter()
            if how == "ZIP":
                refused = upload_zip(base, keys["poor"], archive, "too-big-for-balance")
            else:
                refused = upload_files(base, keys["poor"], files)
            took = time.perf_counter() - start
        print(
            f"\n[credits, {how}] {args.items} photos on a balance of {args.items // 2}: HTTP"
            f" {refused.status_code} after {took:.1f} s: {refused.text}\n  server RSS"
            f" {rss.before:.0f} MB before, peak {rss.peak:.0f} MB; (available, held) before"
            f" {before}, after {available(base, keys['poor'])}; originals stored:"
            f" {len(list(originals.glob('*'))) - stored}"
        )

    # The ZIP.
    seen: list[str] = []
    waits: list[float] = []
    stop = threading.Event()
    watcher = threading.Thread(target=watch_listing, args=(base, shop, stop, seen, waits))
    with PeakSampler(server) as rss:
        watcher.start()
        start = time.perf_counter()
        accepted = upload_zip(base, shop, archive, "shop.zip")
        took = time.perf_counter() - start
        stop.set()
        watcher.join()
    batch = accepted.json()
    batch_id = batch["id"]
    print(
        f"\n[upload as a ZIP] HTTP {accepted.status_code} after {took:.1f} s; server RSS"
        f" {rss.before:.0f} MB before, peak {rss.peak:.0f} MB"
    )
    print(
        f"  batches listed meanwhile, every 0.5 s: {' '.join(seen)}; longest answer"
        f" {max(waits, default=0):.2f} s"
    )
    print(
        f"  total {batch['total']}, rejected {[(r['path'], r['code']) for r in batch['rejected']]}"
    )

    # Fairness and progress.
    time.sleep(3)
    waited, status = single_job(base, keys["other"], photo)
    view = get_batch(base, shop, batch_id)
    print(
        f"\n[fairness] another user's single job, {status} after {waited:.1f} s"
        f" (alone: {alone:.1f} s) while the batch had {view['counts']['queued']} items queued"
    )
    stops = [("stopped (SIGTERM)", args.restart_at), ("killed (SIGKILL)", 2 * args.restart_at)]
    goal = args.process or args.items
    start, done_at_start = time.perf_counter(), processed(view)
    while True:
        view = get_batch(base, shop, batch_id)
        if view["status"] in ("completed", "cancelled") or view["finished"] >= goal:
            break
        if stops and view["finished"] >= stops[0][1]:
            how, _ = stops.pop(0)
            rate = (processed(view) - done_at_start) / (time.perf_counter() - start)
            print(
                f"\n[progress] at {view['finished']}: counts {view['counts']}, charged"
                f" {view['charged']}, eta_seconds {view.get('eta_seconds')} (observed"
                f" {rate:.2f} items/s: {(view['total'] - view['finished']) / rate:.0f} s left)"
            )
            began = time.perf_counter()
            if how.startswith("stopped"):
                server.stop()
            else:
                server.kill()
            gone = time.perf_counter() - began
            server.start()
            after = get_batch(base, shop, batch_id)
            print(
                f"[restart] serve {how} at {view['finished']} finished: exited in {gone:.1f} s,"
                f" serving again after {time.perf_counter() - began:.1f} s: {after['counts']}"
            )
        time.sleep(1)
    if view["status"] not in ("completed", "cancelled"):
        httpx.post(f"{base}/api/v1/batches/{batch_id}/cancel", headers={"X-Api-Key": shop})
        while view["status"] not in ("completed", "cancelled"):
            time.sleep(1)
            view = get_batch(base, shop, batch_id)
    rate = (processed(view) - done_at_start) / (time.perf_counter() - start)
    print(
        f"\n[final] {view['status']}: {view['counts']}, charged {view['charged']}"
        f" (~{rate:.2f} items/s overall, restart included)"
    )
    print(f"  shop ledger: {ledger(data / 'removeany.db', 'shop@example.com')}")
    print(f"  shop (available, held): {available(base, shop)} of {2 * args.items + 10} granted")

    # The results ZIP.
    out = data / "results.zip"
    with PeakSampler(server) as rss:
        start = time.perf_counter()
        with (
            httpx.stream(
                "GET",
                f"{base}/api/v1/batches/{batch_id}/results",
                headers={"X-Api-Key": shop},
                timeout=600,
            ) as response,
            out.open("wb") as fh,
        ):
            for chunk in response.iter_bytes():
                fh.write(chunk)
        took = time.perf_counter() - start
    with zipfile.ZipFile(out) as got:
        names = got.namelist()
        note = got.read("NOT-INCLUDED.txt").decode() if "NOT-INCLUDED.txt" in names else ""
    print(
        f"\n[results] {len(names)} members, {out.stat().st_size / 1e6:.1f} MB in {took:.1f} s;"
        f" server RSS {rss.before:.0f} MB before, peak {rss.peak:.0f} MB"
    )
    print(f"  members: {names[:4]} ... {names[-3:]}")
    print("  NOT-INCLUDED.txt:\n    " + "\n    ".join(note.splitlines()[:8]))

    # Cancelling: the same photos as files, cancelled at once.
    before = available(base, shop)
    sent = upload_files(base, shop, files)
    cancelled = httpx.post(
        f"{base}/api/v1/batches/{sent.json()['id']}/cancel", headers={"X-Api-Key": shop}
    ).json()
    while cancelled["status"] != "cancelled":
        time.sleep(0.5)
        cancelled = get_batch(base, shop, cancelled["id"])
    print(
        f"\n[cancel] {sent.json()['total']} items, cancelled at once: {cancelled['counts']},"
        f" charged {cancelled['charged']}; (available, held) {before} before,"
        f" {available(base, shop)} after"
    )


if __name__ == "__main__":
    main()
