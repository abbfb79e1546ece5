"""report.html: self-contained, with its figures, tables, notes, recommendation and drill-down."""

from __future__ import annotations

import json
import re

from report_fake_run import searched_results

from ragtune.evaluate.run_files import read_predictions, read_results
from ragtune.report.render import drilldown, metrics_table, render_html, render_report, significance_notes


def test_report_is_self_contained(rendered_report):
    html = rendered_report.read_text(encoding="utf-8")
    assert html.count("plotly.js v") == 1  # the library is embedded exactly once
    assert not re.search(r"<script[^>]+src=", html)  # no external scripts
    # plotly.js itself holds a default topojson URL used only by geo maps; the rest of the page holds no URL.
    start = html.index("plotly.js v")
    page = html[:start] + html[html.index("</script>", start):]
    assert "cdn.plot.ly" not in page and "cdn.jsdelivr" not in page
    assert not re.search(r"(src|href)=[\"']https?://", page)
    assert not re.search(r"<link[^>]+href=\"https?://", html)  # no external stylesheets or fonts


def test_report_has_figures_tables_and_recommendation(rendered_report, fake_run_dir):
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(rendered_report.read_text(encoding="utf-8"), "html.parser")
    results, rows = read_results(fake_run_dir), read_predictions(fake_run_dir)
    for name in ("quality", "latency", "cost", "freshness"):  # each chart holds its plotly figure
        assert soup.select_one(f"#figure-{name} #fig-{name}") is not None
    # the quality and efficiency tables have one row per arm; payback and freshness tables follow
    arms = set(results["arms"])
    metric_tables = soup.select("#metrics table.metrics")
    first_cells = [{tr.find("td").get_text(strip=True) for tr in t.select("tbody tr") if tr.find("td")}
                   for t in metric_tables]
    assert sum(1 for cells in first_cells if cells == arms) >= 2
    assert any("Does fine-tuning pay back?" in h.get_text() for h in soup.select("#metrics h3"))
    assert soup.select_one("#freshness table.metrics") is not None
    # the recommendation names the arm the results chose, and every arm ruled out with its reason
    recommendation = results["recommendation"]
    assert soup.select_one("#recommendation .arm").get_text(strip=True) == recommendation["arm"]
    ruled_out = {li.b.get_text(): li.get_text().split(": ", 1)[1] for li in soup.select("#recommendation ul.excluded li")}
    assert ruled_out == recommendation["excluded"]
    assert any(why.startswith("went stale on the changed facts") for why in ruled_out.values())
    # one note per primary comparison, badged as the scoring decided
    shown = [(li.contents[0].strip(), li.select_one(".badge").get_text()) for li in soup.select("#significance > ul > li")]
    expected = [(n["text"], "significant" if n["significant"] else "not significant")
                for n in significance_notes(results) if n["primary"]]
    assert shown == expected and {badge for _, badge in shown} == {"significant", "not significant"}
    # the drill-down lists every question once; the changed-fact ones are marked
    questions = {(r["qid"], bool(r["freshness"])) for r in rows}
    qrows = soup.select("tr.qrow")
    assert len(qrows) == len(questions)
    fresh = [tr for tr in qrows if tr["data-fresh"] == "1"]
    assert len(fresh) == sum(1 for _, is_fresh in questions if is_fresh) > 0
    assert all(tr.select_one(".badge.fresh").get_text() == "changed fact" for tr in fresh)


def test_metrics_table_marks_best_cells(fake_run_dir):
    results = read_results(fake_run_dir)
    table = metrics_table(results)
    labels = [c["label"] for c in table["columns"]]
    assert labels[:2] == ["Exact match", "F1"]
    by_arm = {row["arm"]: row for row in table["rows"]}
    f1_col = labels.index("F1")
    best_arm = max(results["arms"], key=lambda a: results["arms"][a]["metrics"]["f1"])
    assert by_arm[best_arm]["cells"][f1_col]["best"]
    assert not by_arm["base"]["cells"][f1_col]["best"]
    assert by_arm["base"]["cells"][labels.index("Faithfulness")]["text"] == "–"


def test_significance_notes_sentences(fake_run_dir):
    notes = significance_notes(read_results(fake_run_dir))
    first = notes[0]
    assert first["primary"] and first["metric"] == "f1"
    assert re.fullmatch(r"\w+ vs \w+: [+-]\d\.\d{3} F1 \(95% CI [+-]\d\.\d\d to [+-]\d\.\d\d\), p=\d\.\d{3} \(Holm\), "
                        r"(not )?significant", first["text"])


def test_drilldown_grades_and_sources(fake_run_dir):
    results, rows = read_results(fake_run_dir), read_predictions(fake_run_dir)
    drill = drilldown(results, rows, max_questions=5)
    assert drill["shown"] == 5 and drill["total"] == 52
    q = drill["questions"][0]
    assert set(q["answers"]) == {"base", "rag", "ft", "ft_rag", "raft"}
    for arm_name, answer in q["answers"].items():
        row = next(r for r in rows if r["qid"] == q["qid"] and r["arm"] == arm_name and not r["freshness"])
        expected = "ok" if row["answer"].lower() == row["gold_answers"][0].lower() else None
        if expected:
            assert answer["grade"] == "ok"
        assert len(answer["sources"]) == len(row["citations"])
    assert q["answers"]["base"]["sources"] == []


def test_user_text_is_escaped(fake_run_dir):
    results, rows = read_results(fake_run_dir), read_predictions(fake_run_dir)
    rows = [dict(r) for r in rows]
    rows[0]["answer"] = "<script>alert('x')</script>"
    html = render_html(results, rows, max_questions=3)
    assert "<script>alert('x')</script>" not in html
    assert "&lt;script&gt;alert(" in html


def test_render_report_writes_atomically(fake_run_dir, tmp_path):
    out = render_report(fake_run_dir, out=tmp_path / "r.html", max_questions=10)
    assert out == tmp_path / "r.html"
    assert [p.name for p in tmp_path.iterdir()] == ["r.html"]  # no temp file left behind
    assert out.stat().st_mode & 0o044  # readable by others
    assert "The first 10 of 52 questions are shown" in out.read_text(encoding="utf-8")


def test_report_without_freshness_or_retrieval(tmp_path):
    rows = [{"qid": f"q{i}", "arm": arm, "answer": "x" if arm == "base" else "gold", "gold_answers": ["gold"]}
            for i in range(5) for arm in ("base", "ft")]
    from ragtune.evaluate.scoring import score_run
    from ragtune.report.recommend import with_recommendation

    results = with_recommendation(score_run(rows, semantic=False, n_resamples=200)).to_dict()
    html = render_html(results, read_rows(rows))
    assert 'id="fig-freshness"' not in html
    assert 'id="fig-quality"' in html
    assert results["recommendation"]["arm"] == "ft"


def read_rows(rows):
    from ragtune.evaluate.run_files import validate_rows

    return validate_rows(rows)


def test_search_figure_marks_feasible_infeasible_chosen_and_defaults(fake_run_dir):
    from ragtune.report.figures import search_figure

    info = searched_results(read_results(fake_run_dir))["search"]["arms"]["rag"]
    fig = search_figure("rag", info, "#2f6fde")
    traces = {t.name: t for t in fig.data}
    assert set(traces) == {"feasible", "over a limit", "defaults", "chosen"}
    assert list(traces["feasible"].x) == [100.0, 180.0, 90.0] and list(traces["feasible"].y) == [0.40, 0.55, 0.30]
    assert list(traces["over a limit"].x) == [400.0] and traces["over a limit"].marker.symbol == "x-open"
    assert list(traces["chosen"].y) == [0.55] and traces["chosen"].marker.symbol == "star"
    assert list(traces["defaults"].x) == [100.0]
    assert [shape.x0 for shape in fig.layout.shapes] == [250.0]  # the p95 limit
    assert "k 5<br>mode hybrid" in traces["chosen"].text[0]
    assert search_figure("rag", {**info, "trial_results": []}, "#2f6fde") is None  # a run from before the points


def test_report_search_section_has_the_plot_and_the_overfit(fake_run_dir):
    from bs4 import BeautifulSoup

    from ragtune.report.render import search_sections

    results = searched_results(read_results(fake_run_dir))
    section = search_sections(results)[0]
    assert (section["validation_f1"], section["test_f1"], section["overfit"]) == ("0.550", "0.480", "+0.070")
    assert (section["default_test_f1"], section["gain"]) == ("0.410", "+0.070")
    assert (section["plotted"], section["infeasible"]) == (4, 1)
    soup = BeautifulSoup(render_html(results, read_predictions(fake_run_dir)), "html.parser")
    block = soup.select_one("#search")
    assert block.select_one("#figure-search-rag #fig-search_rag") is not None
    assert "3 feasible, 1 over a limit" in block.select_one("#figure-search-rag h3").get_text()
    text = block.get_text(" ", strip=True)
    assert "validation 0.550 · test 0.480 (over-fit of the search, validation − test: +0.070)" in text
    assert "defaults on test 0.410 · gain from the search +0.070" in text
    assert "synthesised from the documents none of the test questions is about" in text
    assert "p95 ≤ 250 ms: 3 feasible" in text


def test_report_search_section_says_whether_the_winner_beat_the_defaults(fake_run_dir):
    from ragtune.report.render import search_sections

    results = searched_results(read_results(fake_run_dir))
    info = results["search"]["arms"]["rag"]
    info["versus_defaults"] = {"trial": 1, "delta_f1": 0.15, "p_value": 0.0312, "n": 12, "alpha": 0.05,
                               "switched": True}
    assert search_sections(results)[0]["versus"] == (
        "Trial 1 replaced the defaults: +0.150 F1 on 12 validation questions, paired p=0.031 < 0.05.")
    info["versus_defaults"] = {**info["versus_defaults"], "p_value": 0.25, "switched": False}
    kept = search_sections(results)[0]["versus"]
    assert kept.startswith("The defaults were kept: the best trial (1) led by +0.150 F1") and "p=0.250" in kept
    assert "The defaults were kept" in render_html(results, read_predictions(fake_run_dir))
    info["versus_defaults"] = {**info["versus_defaults"], "p_value": 0.016, "alpha": 0.01, "family_alpha": 0.05,
                               "compared": 5}
    assert search_sections(results)[0]["versus"].endswith(
        "p=0.016, not below 0.01 (0.05 over the 5 trials it was the best of) — too little evidence to change settings.")
    info["versus_defaults"]["detectable_f1"] = 0.081  # what the split could confirm (search._confirmed)
    assert search_sections(results)[0]["versus"].endswith(
        "— too little evidence to change settings. 12 validation questions confirm a lead of about +0.081 F1 "
        "(80% power at that level); more questions or a larger --validation-share confirm smaller ones.")
    info.pop("versus_defaults")
    assert search_sections(results)[0]["versus"] == ""
    info["test_versus_defaults"] = {"delta_f1": -0.024, "ci95": [-0.07, 0.02], "p_value": 0.31, "n": 140}
    assert search_sections(results)[0]["gain"].endswith(
        " (95% CI -0.070 to +0.020, paired p=0.310 on 140 test questions)")


def test_report_search_section_names_the_chosen_training_and_the_pruned_trials(fake_run_dir):
    from bs4 import BeautifulSoup

    results = searched_results(read_results(fake_run_dir))
    info = results["search"]["arms"]["rag"]
    info.update(pruned_trials=2, training={"searched": True, "kind": "sft", "budget_s": 600.0, "epochs": 20,
                                           "lr": 0.003, "adapter": "adapters/sft-e20-lr0.003-abc", "train_s": 41.6,
                                           "adapters_trained": 3, "over_budget_trials": 1})
    text = BeautifulSoup(render_html(results, read_predictions(fake_run_dir)), "html.parser").select_one(
        "#search").get_text(" ", strip=True)
    assert ("Training: 20 epoch(s) at lr 0.003, adapter adapters/sft-e20-lr0.003-abc in the search folder; the search "
            "trained 3 adapter(s) for this arm in 42 s of a 600 s budget (1 trial(s) skipped over it).") in text
    assert "2 trials pruned: stopped after the first validation batches" in text
    info["training"] = {"searched": False, "kind": "sft", "reason": "the sft adapter is given (--adapter)"}
    assert "Training: the sft adapter is given (--adapter)." in render_html(results, read_predictions(fake_run_dir))
