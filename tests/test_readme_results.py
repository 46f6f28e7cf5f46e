"""scripts/readme_results.py: the generated section of docs/results.md, the report's three studies (splicing,
link rewriting, copying), and where scripts/study.sh points it."""

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
    page = f"head\n{rr.BEGIN}\nold\n{rr.END}\ntail\n"
    assert rr.splice(page, "new\n") == f"head\n{rr.BEGIN}\nnew\n{rr.END}\ntail\n"
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


def test_publish_copies_reports_and_rewrites_the_section_of_docs_results_md(tmp_path):
    runs = _study(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text("# X\n")
    page = tmp_path / "docs" / "results.md"
    (tmp_path / "docs" / "results").mkdir(parents=True)
    page.write_text(f"# Results\n{rr.BEGIN}\nold\n{rr.END}\n## Other reports\n")
    (tmp_path / "docs" / "results" / "stale.png").write_bytes(b"old")
    assert rr.main([str(runs), str(page), str(tmp_path / "docs" / "results"), "--minutes", "37"]) == 0
    text = page.read_text()
    assert text.startswith("# Results\n") and text.endswith(f"{rr.END}\n## Other reports\n") and "old" not in text
    assert "CPU cores (" in text and "took 37 min" in text and "| ablate table |" in text and "| errors table |" in text
    # links relative to docs/results.md, so they resolve from the page itself
    assert "](results/sweep.png)" in text and "](results/ablation.md)" in text and "](docs/results/" not in text
    assert "g_sweep" not in text  # galleries stay in the reports
    assert readme.read_text() == "# X\n"  # the README is not touched
    docs = sorted(p.name for p in (tmp_path / "docs" / "results").iterdir())
    assert docs == ["ablate.png", "ablation.csv", "ablation.md", "errors.md", "errors.png", "sweep.md", "sweep.png"]


def test_publish_refuses_a_missing_report_or_markers_and_writes_nothing(tmp_path, capsys):
    runs = _study(tmp_path)
    page = tmp_path / "results.md"
    page.write_text("# no markers\n")
    docs = tmp_path / "results"
    assert rr.main([str(runs), str(page), str(docs)]) == 2
    assert "markers" in capsys.readouterr().err and not docs.exists() and page.read_text() == "# no markers\n"
    (runs / "sweep" / "sweep.md").unlink()
    page.write_text(f"{rr.BEGIN}\n{rr.END}\n")
    assert rr.main([str(runs), str(page), str(docs)]) == 2
    assert "sweep.md: not found" in capsys.readouterr().err and not docs.exists()


def test_the_markers_are_in_docs_results_md_and_study_sh_writes_there():
    """study.sh would fail at its last step (or rewrite the README) if the markers moved again."""
    page = (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    rr.splice(page, "")  # the markers once each, begin before end
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert rr.BEGIN not in readme and rr.END not in readme
    study = (ROOT / "scripts" / "study.sh").read_text(encoding="utf-8")
    assert 'readme_results.py "$runs" docs/results.md docs/results' in study


def test_the_published_section_links_resolve():
    """Every relative link between the markers of docs/results.md points at a file that exists (none while
    no run of today's configuration is published there)."""
    import re

    page = (ROOT / "docs" / "results.md").read_text(encoding="utf-8")
    section = page.split(rr.BEGIN)[1].split(rr.END)[0]
    links = re.findall(r"\]\(([^)#\s]+)\)", section)
    assert all(not link.startswith("docs/") for link in links)
    missing = [link for link in links if not (ROOT / "docs" / link).exists()]
    assert not missing, missing
