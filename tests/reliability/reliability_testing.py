"""Helpers of the reliability tests: the service as a real process, requests, figures.

Everything runs on 127.0.0.1 only. Sizes of the long runs come from environment variables
(``RELIABILITY_*``) so that ``scripts/reliability.sh`` runs the same tests longer; figures
are printed and, when ``RELIABILITY_REPORT_DIR`` is set, written there as JSON.
"""

from __future__ import annotations

import json
import os
import re
import sqlite3
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import faiss
import httpx
import numpy as np
from reliability_inputs import Call
from service_process import ServiceProcess


def env_int(name: str, default: int) -> int:
    """A size of a long run: ``RELIABILITY_<NAME>`` from the environment, else ``default``."""
    value = os.environ.get(f"RELIABILITY_{name}", "")
    return int(value) if value.strip() else default


StartService = Callable[..., ServiceProcess]
"""The ``start_service`` fixture: ``start(data_dir, wait=True, **FACEFIND_env)``."""


def send(http: httpx.Client, call: Call) -> httpx.Response:
    return http.request(
        call.method,
        call.path,
        params=call.params,
        data=call.data,
        files=call.files,
        json=call.json,
        content=call.content,
        headers=call.headers,
    )


def assert_error(response: httpx.Response, status: int) -> None:
    """The documented shape of every error: the status, and JSON with a sentence."""
    assert response.status_code == status, (status, response.status_code, response.text[:500])
    assert response.headers["content-type"].startswith("application/json"), response.headers
    detail = response.json()["detail"]
    assert isinstance(detail, str) and len(detail) >= 10 and "\n" not in detail, detail


def server_errors(http: httpx.Client) -> dict[str, float]:
    """Requests the service answered with a 5xx, by route, from its own /metrics."""
    text = http.get("/metrics").text
    found: dict[str, float] = {}
    pattern = r'^facefind_requests_total\{([^}]*status="5\d\d"[^}]*)\} (\S+)$'
    for labels, value in re.findall(pattern, text, flags=re.MULTILINE):
        if float(value) > 0:
            found[labels] = float(value)
    return found


def requests_served(http: httpx.Client) -> float:
    text = http.get("/metrics").text
    return sum(
        float(v) for v in re.findall(r"^facefind_requests_total\{[^}]*\} (\S+)$", text, re.M)
    )


def assert_clean_log(text: str) -> None:
    """No traceback and no 'unexpected error' in what the service wrote."""
    assert "Traceback" not in text, text[-5000:]
    assert "unexpected error" not in text, text[-5000:]


def percentiles(samples: Iterable[float]) -> dict[str, float]:
    values = np.asarray(list(samples), dtype=np.float64) * 1000.0
    if values.size == 0:
        return {"n": 0}
    p50, p95, p99 = np.percentile(values, [50, 95, 99])
    return {
        "n": int(values.size),
        "p50_ms": round(float(p50), 1),
        "p95_ms": round(float(p95), 1),
        "p99_ms": round(float(p99), 1),
        "max_ms": round(float(values.max()), 1),
    }


def report(name: str, figures: dict[str, Any]) -> None:
    """Print the figures of a run; keep them as JSON when RELIABILITY_REPORT_DIR is set."""
    figures = {
        "measured": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpus": os.cpu_count(),
        "load_average_1m": round(os.getloadavg()[0], 2),
        **figures,
    }
    print(f"\n[reliability] {name}: {json.dumps(figures)}", flush=True)
    target = os.environ.get("RELIABILITY_REPORT_DIR", "").strip()
    if target:
        Path(target).mkdir(parents=True, exist_ok=True)
        (Path(target) / f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")


def stored_state(data_dir: Path) -> tuple[set[int], set[int], dict[str, Any]]:
    """(SQLite row ids, FAISS ids, index.json) of a store at rest, read independently of
    facefind's own code: the database read-only, the index file with FAISS itself."""
    uri = f"file:{data_dir / 'gallery.sqlite3'}?mode=ro"
    with sqlite3.connect(uri, uri=True) as db:
        rows = {r[0] for r in db.execute("SELECT rowid FROM faces")}
    index = faiss.read_index(str(data_dir / "index.faiss"))
    if hasattr(index, "id_map"):
        ids = set(faiss.vector_to_array(index.id_map).tolist())
    else:  # an IVF index keeps ids in its inverted lists
        invlists = faiss.extract_index_ivf(index).invlists
        ids = set()
        for i in range(invlists.nlist):
            size = invlists.list_size(i)
            if size:
                ptr = invlists.get_ids(i)
                ids.update(faiss.rev_swig_ptr(ptr, size).tolist())
    assert index.ntotal == len(ids), (index.ntotal, len(ids))
    sidecar = json.loads((data_dir / "index.json").read_text())
    return rows, ids, sidecar


def list_ids(http: httpx.Client) -> dict[str, dict[str, Any]]:
    """Every gallery entry, page by page."""
    entries: dict[str, dict[str, Any]] = {}
    offset = 0
    while True:
        page = http.get("/gallery", params={"offset": offset, "limit": 500})
        page.raise_for_status()
        body = page.json()
        entries.update((e["id"], e) for e in body["data"])
        offset += len(body["data"])
        if not body["data"] or offset >= body["count"]:
            return entries
