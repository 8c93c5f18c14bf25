"""Raw paginated lists through the Kubernetes gateway: objects per second, parsing included.

Run: .venv/bin/python bench/kube_pages.py [--pages 40 --per-page 500]
Target (issue 9): a snapshot reads at least 5,000 objects/s. The pages (Pod-like objects of
about 1 KB) are encoded once and served from loopback by a thread, so the figure is the
gateway's own cost (HTTP, the answer cap's reading, JSON), not the API server's or etcd's.
"""

from __future__ import annotations

import argparse
import json
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from clusters import kube

ITEM = {
    "metadata": {
        "name": "web-0",
        "namespace": "shop",
        "labels": {"app": "web"},
        "annotations": {"note": "x" * 200},
        "resourceVersion": "1",
        "uid": "0" * 36,
    },
    "spec": {"containers": [{"name": "web", "image": "nginx", "env": [{"name": "A", "value": "B"}] * 10}]},
    "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}] * 4},
}


def answer(body: dict[str, object]) -> bytes:
    raw = json.dumps(body).encode()
    head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(raw)}\r\n\r\n"
    return head.encode() + raw


def serve(pages: list[bytes]) -> int:
    listener = socket.create_server(("127.0.0.1", 0))

    def handle(conn: socket.socket) -> None:
        with conn:
            served = 0
            data = b""
            while served < len(pages):
                chunk = conn.recv(65536)
                if not chunk:
                    return
                data += chunk
                while b"\r\n\r\n" in data and served < len(pages):
                    _, data = data.split(b"\r\n\r\n", 1)
                    conn.sendall(pages[served])
                    served += 1

    def accept() -> None:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=handle, args=(conn,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    return int(listener.getsockname()[1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--pages", type=int, default=40)
    parser.add_argument("--per-page", type=int, default=500)
    args = parser.parse_args()
    pages = [
        answer(
            {
                "kind": "PodList",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": "5", "continue": "" if i == args.pages - 1 else f"t{i}"},
                "items": [ITEM] * args.per_page,
            }
        )
        for i in range(args.pages)
    ]
    port = serve(pages)
    kubeconfig = (
        "apiVersion: v1\nkind: Config\ncurrent-context: c\n"
        f"clusters:\n- name: k\n  cluster:\n    server: http://127.0.0.1:{port}\n"
        "users:\n- name: u\n  user:\n    token: t\n"
        "contexts:\n- name: c\n  context:\n    cluster: k\n    user: u\n"
    )
    client = kube.connect(kubeconfig, trusted=True)
    started = time.monotonic()
    count = sum(len(page["items"]) for page in kube.list_pages(client, ("v1", "Pod"), limit=args.per_page))
    elapsed = time.monotonic() - started
    size = len(pages[0]) / 1e6
    print(
        f"raw pages: {count} objects in {elapsed:.2f} s = {count / elapsed:,.0f} objects/s (target >= 5,000)"
    )
    print(f"page: {args.per_page} objects, {size:.2f} MB")


if __name__ == "__main__":
    main()
