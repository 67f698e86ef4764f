"""Time per image through the real HTTP API vs the engine alone (the named baseline).

Starts `removeany serve` on a free loopback port with a fresh data dir, creates a user with the
CLI, then sends every photo of an eval folder through `POST /v1.0/removebg` one at a time.

    .venv/bin/python benchmarks/api_latency.py [--data ../shared/eval/object] [--limit 20]
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path

from PIL import Image

from removeany.engine import decode_image, remove_background

REPO = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def photos(folder: Path, limit: int) -> list[Path]:
    found = sorted(
        p
        for p in folder.iterdir()
        if p.suffix in (".jpg", ".png") and not p.name.endswith(".alpha.png")
    )
    return found[:limit]


def post_multipart(url: str, key: str, path: Path) -> tuple[int, dict[str, str]]:
    boundary = uuid.uuid4().hex
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="size"\r\n\r\nfull\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="image_file"; '
            f'filename="{path.name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        ).encode()
        + path.read_bytes()
        + f"\r\n--{boundary}--\r\n".encode()
    )
    request = urllib.request.Request(
        url,
        data=body,
        method="POST",
        headers={"X-Api-Key": key, "Content-Type": f"multipart/form-data; boundary={boundary}"},
    )
    with urllib.request.urlopen(request, timeout=300) as response:
        response.read()
        return response.status, {k.lower(): v for k, v in response.headers.items()}


def summary(name: str, seconds: list[float]) -> str:
    ordered = sorted(seconds)
    p95 = ordered[max(0, round(0.95 * len(ordered)) - 1)]
    return (
        f"{name:<28} n={len(seconds):<3} mean={statistics.mean(seconds) * 1000:7.0f} ms  "
        f"median={statistics.median(seconds) * 1000:7.0f} ms  p95={p95 * 1000:7.0f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "eval" / "object")
    parser.add_argument("--limit", type=int, default=20)
    args = parser.parse_args()
    images = photos(args.data, args.limit)

    engine_times = []
    for path in images:
        start = time.perf_counter()
        image = decode_image(path.read_bytes(), max_bytes=1 << 30, max_pixels=1 << 30)
        remove_background(image).save(os.devnull, "PNG")
        engine_times.append(time.perf_counter() - start)

    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "REMOVEANY_DATA_DIR": tmp, "REMOVEANY_SIGNUP_CREDITS": "0"}
        created = subprocess.run(
            [
                sys.executable,
                "-m",
                "removeany",
                "users",
                "create",
                "bench@example.com",
                "--password",
                "benchmark password",
                "--credits",
                str(len(images) + 5),
                "--api-key",
            ],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        key = created.stdout.strip().splitlines()[-1]
        port = free_port()
        server = subprocess.Popen(
            [sys.executable, "-m", "removeany", "serve", "--port", str(port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        try:
            base = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:
                try:
                    urllib.request.urlopen(f"{base}/api/v1/prices", timeout=2).read()
                    break
                except OSError:
                    time.sleep(0.2)
            api_times = []
            for path in images:
                start = time.perf_counter()
                status, headers = post_multipart(f"{base}/v1.0/removebg", key, path)
                api_times.append(time.perf_counter() - start)
                assert status == 200 and headers["x-credits-charged"] == "1", headers
        finally:
            server.terminate()
            server.wait(timeout=30)

    pixels = statistics.mean(Image.open(p).width * Image.open(p).height for p in images)
    print(
        f"{len(images)} photos from {args.data} (mean {pixels / 1e6:.2f} MP), "
        f"{os.cpu_count()} CPU cores"
    )
    print(summary("engine alone (baseline)", engine_times))
    print(summary("POST /v1.0/removebg", api_times))
    overhead = statistics.median(api_times) / statistics.median(engine_times) - 1
    print(f"API overhead over the engine (median): {overhead * 100:+.1f}%")


if __name__ == "__main__":
    main()
