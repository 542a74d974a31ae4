"""bench history over stored runs: the frozen golden run plus runs built in the test, given out of order; the
trend table lists them oldest first with each engine's figures, marks changed settings, and the plot is written."""

from __future__ import annotations

import shutil
from pathlib import Path

from click.testing import CliRunner

from harness.cli import cli
from harness.report.compare import load_runs
from harness.report.history import history_points, render_history, run_started
from tests.unit.synthetic_runs import GOLDEN, Rep, reps, write_run

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def nightly_runs(base: Path) -> list[Path]:
    """Three nights, the last slower for flink, and a fourth with another rate; returned newest first."""
    runs = [
        write_run(base, {"spark": reps(3000, 3100, 2900), "flink": reps(1500, 1550, 1450)}, started="20270101T021700Z"),
        write_run(base, {"spark": reps(3010, 3090, 2950), "flink": reps(1510, 1540, 1460)}, started="20270102T021700Z"),
        write_run(base, {"spark": [Rep(3000, cpu=90), Rep(3050, cpu=92)],
                         "flink": reps(2100, 2150, 2050, cpu=40.0)}, started="20270103T021700Z"),
        write_run(base, {"spark": reps(3000), "flink": reps(1500)}, started="20270104T021700Z",
                  scenario={"load": {"rate": "400"}}, status="interrupted"),
    ]
    return runs[::-1]


def table_rows(text: str, engine: str) -> list[list[str]]:
    section = text.split(f"## {engine}\n", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ")][1:]
    return [[cell.strip() for cell in row.strip("|").split(" | ")] for row in rows]


def test_runs_are_listed_oldest_first_with_their_figures(tmp_path: Path) -> None:
    runs = nightly_runs(tmp_path / "runs")
    text = render_history(history_points(load_runs([*runs, GOLDEN])))
    flink = table_rows(text, "flink")
    assert [row[1] for row in flink] == [f"`{GOLDEN.name}`"] + [f"`{p.name}`" for p in runs[::-1]]
    # the first repetition's load started 90 s after the directory was named
    assert [row[0] for row in flink][1:] == [f"2027-01-0{day} 02:18" for day in (1, 2, 3, 4)]
    # started (UTC) | run | commit | reps | result p50 | result p99 | processed | engine CPU | note
    assert flink[1][3:] == ["3/3", "1,500 ± 124", "1,800 ± 149", "5,000 ± 0.00", "80.0 ± 0.00", ""]
    assert flink[3][3:8] == ["3/3", "2,100 ± 124", "2,520 ± 149", "5,000 ± 0.00", "40.0 ± 0.00"]
    assert flink[0][3] == "1/2"  # the golden run's flink rep 2 failed
    assert flink[4][-1] == "run interrupted; settings changed"
    spark = table_rows(text, "spark")
    assert spark[3][3] == "2/2" and spark[3][7] == "91.0 ± 12.7"


def test_a_run_without_repetitions_is_placed_by_its_directory_name(tmp_path: Path) -> None:
    run = write_run(tmp_path, {"spark": reps(2500)}, started="20270105T000000Z")
    shutil.rmtree(run / "spark")
    [loaded] = load_runs([run])
    assert run_started(loaded).isoformat() == "2027-01-05T00:00:00+00:00"  # type: ignore[union-attr]


def test_bench_history_writes_the_table_and_the_plot(tmp_path: Path) -> None:
    runs = nightly_runs(tmp_path / "runs")
    to = tmp_path / "out" / "history.md"
    result = CliRunner().invoke(cli, ["history", *map(str, [GOLDEN, *runs]), "--to", str(to)])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [str(to), str(to.parent / "history.png")]
    text = to.read_text()
    assert text.startswith("# Benchmark history\n\n5 run(s), oldest first.")
    assert "![Benchmark history](history.png)" in text
    assert "| started (UTC) | run | commit | reps | result p50 (ms) | result p99 (ms) | processed (events/s) | " \
           "engine CPU (% of a core) | note |" in text
    image = (to.parent / "history.png").read_bytes()
    assert image.startswith(PNG_MAGIC) and len(image) > 10_000


def test_bench_history_prints_without_to_and_can_skip_the_plot(tmp_path: Path) -> None:
    runs = nightly_runs(tmp_path / "runs")
    result = CliRunner().invoke(cli, ["history", *map(str, runs), "--no-plot"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("# Benchmark history\n\n4 run(s), oldest first.")
    assert "![" not in result.output
    plot = tmp_path / "elsewhere" / "trend.png"
    result = CliRunner().invoke(cli, ["history", *map(str, runs), "--to", str(tmp_path / "h.md"), "--plot", str(plot)])
    assert result.exit_code == 0, result.output
    assert plot.read_bytes().startswith(PNG_MAGIC)
    assert "![Benchmark history](elsewhere/trend.png)" in (tmp_path / "h.md").read_text()
