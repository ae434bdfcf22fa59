"""plot writes PNG and SVG charts, with the targets' ratio bounds as lines."""
import pytest

from stagekit_tools import targets

from conftest import fixture, run_tool

CHARTS = ("throughput", "ratio_to_limit", "history")


@pytest.fixture(scope="module")
def charts(tmp_path_factory):
    out = tmp_path_factory.mktemp("charts")
    proc = run_tool("plot", fixture("baseline.json"), fixture("peer_pytorch.json"),
                    "--out", str(out), "--history", fixture("history_step"))
    assert proc.returncode == 0, proc.stderr
    return out, proc.stdout.split()


def test_plot_writes_png_and_svg(charts):
    out, printed = charts
    for stem in CHARTS:
        png, svg = out / f"{stem}.png", out / f"{stem}.svg"
        assert png.stat().st_size > 1000 and svg.stat().st_size > 1000
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        assert b"<svg" in svg.read_bytes()[:2000]
        assert str(png) in printed and str(svg) in printed


def test_plot_rejects_bad_input(tmp_path):
    proc = run_tool("plot", fixture("schema_v2.json"), "--out", str(tmp_path / "c"))
    assert proc.returncode == 2 and "stagekit_schema_version" in proc.stderr
    assert not (tmp_path / "c").exists()


def test_ratio_chart_draws_the_targets_bounds(charts):
    out, _ = charts
    svg = (out / "ratio_to_limit.svg").read_text()
    bounds = targets.ratio_bounds()
    assert [b for b, _ in bounds] == [0.90, 0.80]
    for bound, label in bounds:
        assert f"{bound:.2f} target ({label})" in svg
    assert "0.90 target (warm, GPU)" in svg


def test_only_draws_the_charts_named(tmp_path):
    proc = run_tool("plot", fixture("baseline.json"), "--dist", fixture("dist_mpi_np4.json"),
                    "--only", "ratio_to_limit", "--only", "replication_bandwidth",
                    "--out", str(tmp_path))
    assert proc.returncode == 0, proc.stderr
    drawn = sorted(p.name for p in tmp_path.iterdir())
    assert drawn == ["ratio_to_limit.png", "ratio_to_limit.svg",
                     "replication_bandwidth.png", "replication_bandwidth.svg"]
    assert sorted(proc.stdout.split()) == sorted(str(tmp_path / name) for name in drawn)
    bad = run_tool("plot", fixture("baseline.json"), "--only", "pie",
                   "--out", str(tmp_path / "x"))
    assert bad.returncode == 2 and "invalid choice" in bad.stderr
