"""The command line, run as a person runs it: a subprocess, real index, real model."""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import ROOT, SHIPPED_PARAGRAPHS, SHIPPED_SECTIONS

README = (ROOT / "README.md").read_text(encoding="utf-8")


def run(*args, env=None, stdin=None, timeout=180):
    environment = {**os.environ, **(env or {})}
    return subprocess.run([sys.executable, "-m", "alliance_qa", *args], input=stdin,
                          capture_output=True, text=True, env=environment, timeout=timeout)


@pytest.fixture
def index_env(built, tmp_path):
    """An environment pointing at a private copy of the session's index."""
    target = tmp_path / "cli-index"
    shutil.copytree(built.index_dir, target)
    return {"ALLIANCE_QA_INDEX": str(target)}


@pytest.mark.full
def test_build_check_on_missing_then_built_index(tmp_path, corpus_copy):
    env = {"ALLIANCE_QA_INDEX": str(tmp_path / "i"), "ALLIANCE_QA_CORPUS": str(corpus_copy)}
    missing = run("build", "--check", env=env)
    assert missing.returncode == 1
    assert "There is no index" in missing.stderr and "Traceback" not in missing.stderr
    built = run("build", "--quiet", env=env)
    assert built.returncode == 0, built.stderr
    assert (f"Indexed 1 document(s), {SHIPPED_SECTIONS} sections, {SHIPPED_PARAGRAPHS} chunks"
            in built.stdout)
    assert "Embedding" not in built.stderr
    again = run("build", env=env)          # not quiet: each stage is named, in order
    stages = [line for line in again.stderr.splitlines() if line.endswith(("…", "Done."))]
    assert stages == ["Reading the corpus…",           # the model's export is in place
                      "Finding the corpus words near the words it lacks…",
                      "Embedding 0 of 55 paragraphs with their headings, word by word (55 "
                      "unchanged)…",
                      "Embedding 0 of 55 paragraphs (55 unchanged)…",
                      "Embedding 0 of 134 sentences (134 unchanged)…",
                      "Writing the index…",
                      "Calibrating abstention on questions it can and cannot answer…",
                      "Done."]
    assert "Questions are encoded by the model's verified ONNX export." in again.stdout
    assert run("build", "--check", env=env).returncode == 0
    (corpus_copy / "us-rok-alliance-history.md").write_text("# Changed\n\nNew text.\n")
    stale = run("build", "--check", env=env)
    assert stale.returncode == 1
    assert "us-rok-alliance-history.md was edited" in stale.stderr
    assert "alliance-qa build" in stale.stderr


def test_ask_prints_passages_with_citations(index_env):
    result = run("ask", "What are the key provisions of the treaty?", "-k", "2", env=index_env)
    assert result.returncode == 0, result.stderr
    assert "[1] §1.2 Key provisions of the treaty, ¶" in result.stdout
    assert "[2] " in result.stdout and "[3] " not in result.stdout
    assert "»" in result.stdout                      # the highlighted sentence


def test_ask_json_batch_from_stdin(index_env):
    stdin = "What is THAAD?\n\nWhat is the capital of France?\nhi! whats the tretay about\n"
    result = run("ask", "--json", env=index_env, stdin=stdin)
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(lines) == 4
    thaad, empty, france, chatty = lines
    assert set(thaad) >= {"question", "searched", "abstained", "passages"}
    assert chatty["question"] == "hi! whats the tretay about"
    assert chatty["searched"] == "whats the treaty about?"
    assert chatty["notices"] == ["Read “tretay” as “treaty”."]
    passage = thaad["passages"][0]
    assert set(passage) >= {"rank", "score", "citation", "id", "document", "section",
                            "section_number", "paragraph", "text", "highlights"}
    assert "THAAD" in passage["text"] and passage["rank"] == 1
    start, end = passage["highlights"][0]
    assert 0 <= start < end <= len(passage["text"])
    assert "empty" in empty["error"]
    assert france["abstained"] is True


def test_cite_prints_the_paragraph_with_neighbours(index_env):
    cid = "us-rok-alliance-history/key-provisions-of-the-treaty#p2"
    result = run("cite", cid, env=index_env)
    assert result.returncode == 0, result.stderr
    assert "§1.2 Key provisions of the treaty, ¶2" in result.stdout
    assert "▶ ¶2 The treaty also emphasizes" in result.stdout
    assert "¶1 " in result.stdout and "¶3 " in result.stdout


@pytest.mark.parametrize("bad", ["../../etc/passwd", "nope/nothing#p1", "9.9"])
def test_cite_refuses_unknown_ids_without_a_traceback(index_env, bad):
    result = run("cite", bad, env=index_env)
    assert result.returncode == 1
    assert result.stderr.startswith("error: No paragraph or section is cited as")
    assert "alliance-qa sections" in result.stderr and "Traceback" not in result.stderr


def test_sections_lists_the_shipped_document_s_outline_with_ids(index_env):
    result = run("sections", env=index_env)
    assert result.returncode == 0
    assert "    §5.1 The Status of Forces Agreement (SOFA) updates  [3 ¶]  " \
           "us-rok-alliance-history/the-status-of-forces-agreement-sofa-updates" in result.stdout
    data = json.loads(run("sections", "--json", env=index_env).stdout)
    assert len(data[0]["sections"]) == SHIPPED_SECTIONS


def test_ask_without_an_index_says_how_to_fix_it(tmp_path):
    result = run("ask", "treaty", env={"ALLIANCE_QA_INDEX": str(tmp_path / "none")})
    assert result.returncode == 1
    assert "There is no index" in result.stderr and "alliance-qa build" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_model_that_cannot_load_is_one_sentence(index_env):
    result = run("ask", "treaty", env={**index_env, "ALLIANCE_QA_MODEL": "/no/such/model"})
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1 and "model" in result.stderr


def test_empty_corpus_build_is_refused_and_keeps_the_index(index_env, tmp_path):
    empty = tmp_path / "empty-corpus"
    empty.mkdir()
    result = run("build", env={**index_env, "ALLIANCE_QA_CORPUS": str(empty)})
    assert result.returncode == 1 and "No usable documents" in result.stderr
    assert run("build", "--check", env=index_env).returncode == 0


@pytest.mark.parametrize("command", ["build", "ask", "cite", "sections", "eval", "bench"])
def test_every_command_has_help_and_is_in_the_readme(command):
    result = run(command, "--help")
    assert result.returncode == 0 and "usage: alliance-qa" in result.stdout
    assert f"alliance-qa {command}" in README


@pytest.mark.parametrize("question, message", [
    ("", "The question is empty."), ("   ", "The question is empty."),
    ("?!", "The question has no words in it."),
])
def test_empty_questions_get_a_gentle_message(index_env, question, message):
    result = run("ask", question, env=index_env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert message in result.stderr and "Type a question" in result.stderr


def test_a_huge_question_from_stdin_is_shortened_quickly(index_env):
    result = run("ask", "--json", env=index_env, stdin="treaty " * 20_000 + "\n")
    answer = json.loads(result.stdout)
    assert answer["notices"] and "only its first" in answer["notices"][0]
    assert answer["passages"]


def test_document_filter_on_the_command_line(index_env):
    ok = run("ask", "treaty", "--doc", "us-rok-alliance-history", "--json", env=index_env)
    assert json.loads(ok.stdout)["passages"][0]["document"] == "us-rok-alliance-history"
    bad = run("ask", "treaty", "--doc", "nope", env=index_env)
    assert bad.returncode == 1
    assert "There is no document 'nope'" in bad.stderr and "alliance-qa sections" in bad.stderr


@pytest.mark.full
def test_eval_reports_the_product_well_above_both_baselines(index_env):
    """The alliance suite, on its own index (built by eval itself, from eval/alliance/)."""
    result = run("eval", "--suite", "alliance", "--json", env=index_env)
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)["alliance"]
    assert report["questions"] >= 200 and report["answerable"] >= 160
    # every question set of the suite is read, and each gets its own product figures
    assert set(report["product_by_set"]) == {
        p.name for p in (ROOT / "eval" / "alliance").glob("*.jsonl")
        if "gold\": [\"" in p.read_text() and p.name != "conversations.jsonl"}
    assert report["conversations"]["follow-up"]["turns"] >= 60
    assert sum(s["count"] for s in report["product_by_set"].values()) == report["answerable"]
    product, bm25, dense = (report["systems"][name] for name in ("product", "bm25", "dense"))
    for metric in ("hit1", "hit3", "mrr"):
        assert product[metric] >= max(bm25[metric], dense[metric]) + 0.02
    assert product["hit1"] >= 0.85
    assert {"factoid", "paraphrase", "conceptual", "acronym", "casual"} <= \
        product["by_kind"].keys()
    abstention = report["abstention"]
    assert abstention["by_kind"]["off-topic"] >= 0.9 and abstention["false_abstention"] <= 0.05
    calibration = report["calibration"]            # learned by the suite's own build
    assert calibration["reference_questions"] >= 200 and calibration["threshold"] > 0
    assert calibration["corpus_questions"] > 0
    assert calibration["expected_calibration_error"] < 0.3
    assert set(report["checks"]) == {"enabled", "time", "quantity", "number", "role"}
    # the same questions typed in a hurry, or with a letter slipped, lose little
    robust = report["robustness"]
    assert robust["typed_casually"]["hit1"] >= product["hit1"] - 0.02
    assert robust["one_letter_slip"]["hit1"] >= product["hit1"] - 0.05
    assert robust["one_letter_slip"]["count"] == report["answerable"]
    for retyped in robust.values():
        assert retyped["abstention"]["by_kind"]["off-topic"] >= 0.9
        assert retyped["abstention"]["false_abstention"] <= 0.05


@pytest.mark.unit
def test_questions_are_retyped_the_same_way_every_run():
    from alliance_qa.evaluation import typed_casually, with_a_slip
    assert typed_casually("What's SOFA, and why? (US–ROK)") == "what's sofa and why us rok"
    question = "Which neighbouring countries adjust their strategies?"
    slipped = with_a_slip(question, "fresh-12")
    assert slipped == with_a_slip(question, "fresh-12") != question
    changed = [(a, b) for a, b in zip(question.split(), slipped.split()) if a != b]
    assert len(changed) == 1 and len(changed[0][0]) >= 5
    assert abs(len(changed[0][0]) - len(changed[0][1])) <= 1
    assert with_a_slip("Why the DMZ?", "x") == "Why the DMZ?"      # no word to slip in


@pytest.mark.parametrize("content, says", [
    ('{"question": "What is SOFA?"}\n', "Line bad.jsonl:1 is not a question."),
    ('{"question": "What is SOFA?", "gold": []}\nnot json\n', "Line bad.jsonl:2"),
    ("", "hold no questions"),
])
def test_eval_says_which_line_of_a_question_set_is_wrong(index_env, tmp_path, content, says):
    bad = tmp_path / "bad.jsonl"
    bad.write_text(content)
    result = run("eval", "--questions", str(bad), env=index_env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert says in result.stderr and '"gold"' in result.stderr


@pytest.mark.full
def test_eval_takes_gold_sections_by_id_number_or_heading_and_refuses_unknown_ones(
        index_env, tmp_path):
    sofa = "us-rok-alliance-history/the-status-of-forces-agreement-sofa-updates"
    ways = tmp_path / "ways.jsonl"
    ways.write_text("".join(json.dumps({"question": "What is SOFA?", "gold": [gold]}) + "\n"
                            for gold in (sofa, "5.1",
                                         "The Status of Forces Agreement (SOFA) updates")))
    report = json.loads(run("eval", "--questions", str(ways), "--json", env=index_env).stdout)
    assert report["answerable"] == 3 and report["systems"]["product"]["hit3"] == 1.0
    # a paragraph as gold is judged by the paragraph: only the passage's own one is right
    first = json.loads(run("ask", "What is SOFA?", "--json", env=index_env).stdout)
    paragraphs = tmp_path / "paragraphs.jsonl"
    paragraphs.write_text("".join(
        json.dumps({"question": "What is SOFA?", "gold": [gold]}) + "\n"
        for gold in (first["passages"][0]["id"], first["passages"][1]["id"])))
    judged = json.loads(run("eval", "--questions", str(paragraphs), "--json",
                            env=index_env).stdout)["systems"]["product"]
    assert judged["hit1"] == 0.5 and judged["hit3"] == 1.0
    typo = tmp_path / "typo.jsonl"
    typo.write_text(json.dumps({"question": "What is SOFA?",
                                "gold": ["us-rok-alliance-history/the-sofa"]}) + "\n")
    result = run("eval", "--questions", str(typo), env=index_env)
    assert result.returncode == 1 and "Traceback" not in result.stderr
    assert "'us-rok-alliance-history/the-sofa'" in result.stderr


def test_eval_takes_a_question_set_without_ids_or_kinds(index_env, tmp_path):
    plain = tmp_path / "plain.jsonl"
    plain.write_text(json.dumps({"question": "What does SOFA stand for?", "gold": [
        "us-rok-alliance-history/the-status-of-forces-agreement-sofa-updates"]}) + "\n")
    report = json.loads(run("eval", "--questions", str(plain), "--json", env=index_env).stdout)
    assert report["systems"]["product"]["count"] == 1
    assert report["product_by_set"]["plain.jsonl"]["hit1"] == 1.0


@pytest.mark.full
def test_bench_measures_every_stage_without_the_browser(built):
    from alliance_qa.bench import run_benchmark
    report = run_benchmark(built, repeats=1, browser=False)
    assert "questions encoded by onnxruntime" in report
    for line in ("query, end to end", "  encode (model)", "index build", "embedding throughput",
                 "cold start to first answer", "peak memory"):
        assert re.search(rf"^{re.escape(line)}.*\d", report, re.MULTILINE), line
    assert "failed" not in report
    cold_peak = int(re.search(r"ask` from cold (\d+) MiB", report).group(1))
    assert 50 < cold_peak < 2000


@pytest.mark.full
def test_the_method_scale_asks_in_a_process_without_pytorch(built):
    """The scale benchmark's latency and hit@1 come from a child process like a server."""
    child = subprocess.run(
        [sys.executable, "-c", "import runpy, sys; sys.argv = ['scale', *sys.argv[1:]]; "
         "runpy.run_module('alliance_qa.scale', run_name='__main__'); "
         "print('torch' in sys.modules)", str(ROOT / "eval"), "alliance"],
        env={**os.environ, **built.as_env()}, capture_output=True, text=True, timeout=300)
    assert child.returncode == 0, child.stderr
    figures, torch = child.stdout.splitlines()[-2:]
    figures = json.loads(figures)
    assert torch == "False"
    assert figures["hit_at_1"] > 0.8
    assert 0 < figures["query_p50_ms"] <= figures["query_p95_ms"]


@pytest.mark.unit
def test_settings_pass_to_another_process_through_the_environment(tmp_path):
    from alliance_qa.config import Settings
    settings = Settings(corpus_dir=tmp_path / "c", index_dir=tmp_path / "i", model="m")
    again = Settings.from_env(settings.as_env())
    assert (again.corpus_dir, again.index_dir, again.model, again.encoders) == \
        (settings.corpus_dir, settings.index_dir, "m", tmp_path / "i" / "encoders")


def test_bench_says_why_it_skips_the_browser_without_playwright(built, monkeypatch):
    """An install without the test extras gets a line saying so, not a traceback."""
    import importlib.util

    from alliance_qa import bench
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name == "playwright" else real(name, *a))
    [line] = bench.app_timings(built, repeats=1)
    assert "skipped: Playwright is not installed" in line


@pytest.mark.unit
def test_the_code_is_lint_clean():
    result = subprocess.run([sys.executable, "-m", "ruff", "check", "src", "app.py", "tests"],
                            cwd=ROOT, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:]


@pytest.mark.unit
def test_no_document_links_a_file_that_does_not_exist():
    for document in [ROOT / "README.md", ROOT / "index" / "README.md",
                     *sorted((ROOT / "docs").glob("*.md"))]:
        text = document.read_text(encoding="utf-8")
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if not re.match(r"[a-z]+:", target):
                assert (document.parent / target).exists(), f"{document.name} → {target}"


def processes_apart(pid: int) -> list[int]:
    """The processes `pid` started to work apart (processes.run_apart)."""
    children = [int(c) for task in os.listdir(f"/proc/{pid}/task")
                for c in open(f"/proc/{pid}/task/{task}/children").read().split()]
    return [c for c in children
            if b"alliance_qa.processes" in open(f"/proc/{c}/cmdline", "rb").read()]


@pytest.mark.full
def test_a_build_whose_writing_process_is_killed_says_so_and_the_index_serves(index_env,
                                                                              corpus_copy):
    env = {**os.environ, **index_env, "ALLIANCE_QA_CORPUS": str(corpus_copy)}
    build = subprocess.Popen([sys.executable, "-m", "alliance_qa", "build", "--full",
                              "--quiet"], env=env, stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not processes_apart(build.pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(1)                                       # well into reading the corpus
    os.kill(processes_apart(build.pid)[0], signal.SIGKILL)   # as the system would, out of memory
    _, stderr = build.communicate(timeout=60)
    assert build.returncode == 1 and "Traceback" not in stderr
    assert "The build stopped before it finished (its process was killed by signal 9: out of " \
        "memory?)" in stderr
    assert "The previous index, if any, is unchanged" in stderr
    index = Path(index_env["ALLIANCE_QA_INDEX"])
    assert not list(index.glob(".tmp-build-*"))
    answer = run("ask", "What is SOFA?", "--json", env=env)
    assert answer.returncode == 0 and "status-of-forces" in answer.stdout
