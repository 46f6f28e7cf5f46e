"""scripts/readme_results.py: the README's generated Results section (splicing, link rewriting, copying)."""

import importlib.util

import pytest

from tiny import ROOT

spec = importlib.util.spec_from_file_location("readme_results", ROOT / "scripts" / "readme_results.py")
rr = importlib.util.module_from_spec(spec)
spec.loader.exec_module(rr)


def test_lead_drops_title_and_galleries_and_points_links_into_docs():
    md = ("# Title\n\nText [a.png](a.png) and ![c](curves.png), http://x/y.png kept.\n\n| t |\n\n"
          "## gallery\n\n![g](g.png)\n")
    out = rr.lead(md, "docs/results")
    assert out.startswith("Text [a.png](docs/results/a.png)") and "](docs/results/curves.png)" in out
    assert "Title" not in out and "gallery" not in out and "g.png" not in out and out.endswith("| t |")


def test_splice_replaces_only_between_the_markers():
    readme = f"head\n{rr.BEGIN}\nold\n{rr.END}\ntail\n"
    assert rr.splice(readme, "new\n") == f"head\n{rr.BEGIN}\nnew\n{rr.END}\ntail\n"
    for bad in ["no markers", f"{rr.END}\n{rr.BEGIN}", f"{rr.BEGIN}{rr.BEGIN}{rr.END}"]:
        with pytest.raises(ValueError, match="markers"):
            rr.splice(bad, "x")


def _study(tmp_path):
    runs = tmp_path / "runs"
    for sub, name, _, _ in rr.REPORTS:
        (runs / sub).mkdir(parents=True)
        report = f"# {sub}\n\n| {sub} table |\n\n![chart]({sub}.png)\n\n## more\n\n![g](g_{sub}.png)\n"
        (runs / sub / name).write_text(report)
        (runs / sub / f"{sub}.png").write_bytes(b"png")
        (runs / sub / "best.pt").write_bytes(b"not copied")
    (runs / "ablate" / "results.csv").write_text("variant\nbaseline\n")
    return runs


def test_publish_copies_reports_and_rewrites_the_section(tmp_path):
    runs = _study(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(f"# X\n{rr.BEGIN}\nold\n{rr.END}\n## Speed\n")
    (tmp_path / "docs" / "results").mkdir(parents=True)
    (tmp_path / "docs" / "results" / "stale.png").write_bytes(b"old")
    assert rr.main([str(runs), str(readme), str(tmp_path / "docs" / "results"), "--minutes", "37"]) == 0
    text = readme.read_text()
    assert text.startswith("# X\n") and text.endswith(f"{rr.END}\n## Speed\n") and "old" not in text
    assert "CPU cores (" in text and "took 37 min" in text and "| ablate table |" in text and "| errors table |" in text
    assert "](docs/results/sweep.png)" in text and "g_sweep" not in text  # galleries stay in the reports
    docs = sorted(p.name for p in (tmp_path / "docs" / "results").iterdir())
    assert docs == ["ablate.png", "ablation.csv", "ablation.md", "errors.md", "errors.png", "sweep.md", "sweep.png"]


def test_publish_refuses_a_missing_report_or_markers_and_writes_nothing(tmp_path, capsys):
    runs = _study(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text("# no markers\n")
    docs = tmp_path / "docs"
    assert rr.main([str(runs), str(readme), str(docs)]) == 2
    assert "markers" in capsys.readouterr().err and not docs.exists() and readme.read_text() == "# no markers\n"
    (runs / "sweep" / "sweep.md").unlink()
    readme.write_text(f"{rr.BEGIN}\n{rr.END}\n")
    assert rr.main([str(runs), str(readme), str(docs)]) == 2
    assert "sweep.md: not found" in capsys.readouterr().err and not docs.exists()
