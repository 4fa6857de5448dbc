"""``python -m training lineage``: runs of a warm-restart chain on one axis of images seen."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from training.cli import EXIT_USAGE, main
from training.lineage import held_out, read_lineage


def _metrics(path: Path, rows: list[tuple[int, float, float]]) -> str:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "images", "loss", "top1", "mAP"])
        writer.writerow([10, 640, 0.5, "", ""])  # a step without a validation
        for images, top1, mean_ap in rows:
            writer.writerow([images // 64, images, 0.4, top1, mean_ap])
    return path.name


@pytest.fixture
def lineage(tmp_path: Path) -> Path:
    first = _metrics(tmp_path / "a.csv", [(1000, 0.2, 0.1), (2000, 0.4, 0.3), (3000, 0.3, 0.2)])
    second = _metrics(tmp_path / "b.csv", [(500, 0.35, 0.25), (1500, 0.5, 0.45)])
    path = tmp_path / "lineage.csv"
    path.write_text(
        f"run,metrics,picked,report_top1,report_map\n#1,{first},2000,0.6,0.4\n#2,{second},1500,,\n"
    )
    return path


def test_each_run_is_placed_after_the_kept_weights_it_started_from(lineage: Path) -> None:
    first, second = read_lineage(lineage)
    # the validation after the kept checkpoint (at 2000) belongs to no later run
    assert held_out(first) == [(1000, 0.2, 0.1), (2000, 0.4, 0.3)]
    assert held_out(second) == [(2500, 0.35, 0.25), (3500, 0.5, 0.45)]
    assert second.report_top1 is None


def test_the_command_writes_a_png_and_says_how_far_the_chain_went(
    lineage: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "img" / "lineage.png"
    assert main(["lineage", str(lineage), "--out", str(out)]) == 0
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "3,500 images" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("run,metrics\n#1,a.csv\n", "lineage columns missing: picked"),
        ("run,metrics,picked,report_top1,report_map\n#1,a.csv,one,,\n", "line 2"),
        ("run,metrics,picked,report_top1,report_map\n", "no runs listed"),
        ("run,metrics,picked,report_top1,report_map\n#1,gone.csv,1,,\n", "gone.csv"),
        ("run,metrics,picked,report_top1,report_map\n#1,a.csv,10,,\n", "no validation"),
        ("run,metrics,picked,report_top1,report_map\n#1,b.csv,10,,\n", "metrics file"),
    ],
)
def test_a_bad_lineage_is_a_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, message: str
) -> None:
    _metrics(tmp_path / "a.csv", [(1000, 0.2, 0.1)])
    (tmp_path / "b.csv").write_text("step,top1,mAP\n10,0.5,0.4\n")  # no images column
    path = tmp_path / "lineage.csv"
    path.write_text(text)
    out = tmp_path / "lineage.png"
    assert main(["lineage", str(path), "--out", str(out)]) == EXIT_USAGE
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1
    assert not out.exists()
