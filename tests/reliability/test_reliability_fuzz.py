"""Fuzzing from the service's own OpenAPI description with Schemathesis, bounded in time.

Schemathesis reads ``/openapi.json`` of a real server on 127.0.0.1 (API keys configured, so the
auth paths are exercised too, and ``ignored_auth`` checks that no route skips them) and sends
generated requests, valid and invalid, to every operation, then stateful sequences. It must
find no server error; the server must have answered no 5xx and logged no traceback.

Every status code the service answers must be declared for its route, with the body it really
sends. Left out: ``positive_data_acceptance``, since an empty file is schema-valid yet rightly
refused with 415 (see docs/reliability.md). ``RELIABILITY_FUZZ_SECONDS`` (default 20) bounds
the run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import httpx
from reliability_testing import (
    StartService,
    assert_clean_log,
    env_int,
    report,
    requests_served,
    server_errors,
)

FUZZ_SECONDS = env_int("FUZZ_SECONDS", 20)
KEY = "fuzz-key-0123456789abcdef"
CHECKS = [
    "not_a_server_error",
    "status_code_conformance",
    "response_schema_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "ignored_auth",
    "missing_required_header",
    "unsupported_method",
    "use_after_free",
    "ensure_resource_availability",
]


def schemathesis_command(url: str, seed: int, report_file: Path) -> list[str]:
    """The command docs/reliability.md documents; one worker (its coverage phase is not
    thread-safe in 4.32), a fixed seed, a time budget."""
    return [
        sys.executable, "-m", "schemathesis.cli", "run", f"{url}/openapi.json",
        "--checks", ",".join(CHECKS), "--max-examples", "25",
        "--max-time", str(FUZZ_SECONDS), "--workers", "1", "--seed", str(seed),
        "--request-timeout", "60", "--header", f"X-API-Key: {KEY}",
        "--report", "json", "--report-json-path", str(report_file),
    ]  # fmt: skip


def test_schemathesis_finds_no_server_error(
    tmp_path: Path, start_service: StartService, face_photos: list[Path]
) -> None:
    service = start_service(tmp_path / "data", FACEFIND_API_KEYS=f"{KEY},second-key-abcdef")
    headers = {"X-API-Key": KEY}
    with httpx.Client(base_url=service.url, timeout=120, headers=headers) as http:
        files = [("images", (p.name, p.read_bytes())) for p in face_photos[:5]]
        assert http.post("/gallery", files=files, data={"label": "seed"}).status_code == 200
        served_before = requests_served(http)

    seed = env_int("SEED", 1)
    report_file = tmp_path / "schemathesis.json"
    run = subprocess.run(
        schemathesis_command(service.url, seed, report_file),
        cwd=tmp_path, capture_output=True, text=True, timeout=FUZZ_SECONDS + 300,
    )  # fmt: skip
    summary = json.loads(report_file.read_text())
    assert run.returncode == 0, run.stdout[-6000:]
    assert summary["failures"] == [] and summary["errors"] == [], summary
    assert summary["operations"]["tested"] == summary["operations"]["total"] >= 13

    with httpx.Client(base_url=service.url, timeout=120, headers=headers) as http:
        assert server_errors(http) == {}
        served = requests_served(http) - served_before
        assert http.get("/ready").status_code == 200
    assert_clean_log(service.text())
    report(
        "fuzz",
        {
            "tool": f"schemathesis {summary['schemathesis_version']}",
            "seconds": round(summary["running_time"], 1),
            "seed": seed,
            "checks": CHECKS,
            "operations": summary["operations"]["tested"],
            "test_cases": summary["test_cases"]["generated"],
            "requests_served": int(served),
            "phases": {k: v["status"] for k, v in summary["phases"].items()},
            "failures": len(summary["failures"]),
        },
    )
