"""Hostile input through the real command line: a corpus that tries to leak or hang, a
damaged index, odd bytes on standard input. Each test is one fault of issue #13; the page's
share of them is in test_reliability_page.py.

One hostile corpus is built once for the module, by `alliance-qa build` in a subprocess.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from alliance_qa import store
from alliance_qa.corpus import MAX_FILE_BYTES, read_corpus, read_documents, scan_corpus

pytestmark = pytest.mark.full      # one build of the hostile corpus, then a build per repair
SECRET = "zanzibar-quokka-secret"
GUIDE = """# Lighthouse Keeping

## Lamps

The first lamps burned whale oil, and the keeper trimmed the wicks every four hours through
the night.

Later towers used paraffin vapour burners, which gave a brighter and steadier flame.

## Lenses

A Fresnel lens gathers the light of one lamp into a beam that can be seen twenty miles out
to sea.

## Keepers

Keepers lived at the station with their families and logged the weather three times a day.
"""


def run(*args, env, stdin=None, timeout=300):
    return subprocess.run([sys.executable, "-m", "alliance_qa", *args], input=stdin,
                          capture_output=True, env={**os.environ, **env}, timeout=timeout)


def hostile_corpus(root: Path) -> Path:
    """A corpus with one good document and every kind of file that must be refused."""
    corpus, outside = root / "corpus", root / "outside"
    corpus.mkdir()
    outside.mkdir()
    (outside / "passwd.txt").write_text(f"root:x:0:0:root:/root:/bin/bash {SECRET}\n")
    (outside / "folder").mkdir()
    (outside / "folder" / "leak.md").write_text(f"# Leak\n\n{SECRET} in a linked folder.\n")
    (corpus / "guide.md").write_text(GUIDE)
    (corpus / "passwd-link.txt").symlink_to(outside / "passwd.txt")
    (corpus / "linked-folder").symlink_to(outside / "folder")
    (corpus / "loop.md").symlink_to(corpus / "loop.md")
    (corpus / "broken.md").symlink_to(root / "nowhere.md")
    (corpus / "inside-link.md").symlink_to(corpus / "guide.md")
    os.mkfifo(corpus / "pipe.md")                   # opening it would block forever
    (corpus / os.fsdecode(b"caf\xe9.md")).write_text("Cafe notes.\n")
    with open(corpus / "huge.txt", "wb") as handle:  # sparse: no disk, but over the limit
        handle.truncate(MAX_FILE_BYTES + 1)
    (corpus / "stray-byte.md").write_bytes(b"# Stray\n\nA caf\xe9 stood by the harbour "
                                           b"lighthouse.\n")
    (corpus / "안보.md").write_text("# Security\n\nThe harbour watch kept a lamp lit.\n")
    return corpus


@pytest.fixture(scope="module")
def hostile(tmp_path_factory, encoders):
    """(environment, build result) of a real CLI build of the hostile corpus."""
    root = tmp_path_factory.mktemp("hostile")
    env = {"ALLIANCE_QA_CORPUS": str(hostile_corpus(root)),
           "ALLIANCE_QA_INDEX": str(root / "index"), "ALLIANCE_QA_ENCODERS": str(encoders)}
    return env, run("build", env=env, timeout=600)


@pytest.fixture
def copy(hostile, tmp_path):
    """A private copy of the hostile build's index, for a test to damage."""
    env, _ = hostile
    shutil.copytree(env["ALLIANCE_QA_INDEX"], tmp_path / "index", symlinks=True)
    return {**env, "ALLIANCE_QA_INDEX": str(tmp_path / "index")}


def summary(result) -> str:
    return result.stdout.decode()


def answers(result) -> list[dict]:
    return [json.loads(line) for line in result.stdout.decode("utf-8").splitlines()]


def no_traceback(result) -> None:
    assert b"Traceback" not in result.stderr + result.stdout


# ---------------------------------------------------------------- 1, 2, 6, 9, 15: the corpus

def test_links_out_of_the_corpus_and_special_files_are_skipped_by_name(hostile):
    env, build = hostile
    assert build.returncode == 0, build.stderr.decode()[-2000:]
    warnings = summary(build)
    for line in ("passwd-link.txt: skipped: it links to a file outside the corpus folder",
                 "linked-folder: skipped: links to folders are not followed",
                 "loop.md: skipped: it is a link that loops",
                 "broken.md: skipped: it is a broken link",
                 "pipe.md: skipped: it is not a regular file"):
        assert line in warnings
    asked = run("ask", "--json", "-k", "10", env=env,
                stdin=f"root bin bash nologin {SECRET}\n".encode())
    assert asked.returncode == 0
    assert SECRET not in json.dumps(answers(asked)[0]["passages"])
    listed = json.loads(run("sections", "--json", env=env).stdout)
    assert "inside-link.md" in [d["path"] for d in listed]      # a link inside is read


def test_a_file_name_that_is_not_utf8_is_skipped_readably_and_the_build_lands(hostile):
    env, build = hostile
    no_traceback(build)
    assert "caf\N{REPLACEMENT CHARACTER}.md: skipped: its name is not valid UTF-8" in \
        summary(build)
    index = Path(env["ALLIANCE_QA_INDEX"])
    assert not list(index.glob(".tmp-build-*")) and store.live_folder(index).is_dir()


def test_a_huge_file_is_refused_by_its_size_before_it_is_read(hostile, monkeypatch):
    _, build = hostile
    assert "huge.txt: skipped: it is larger than 20 MB" in summary(build)
    opened = []
    real_open = open
    monkeypatch.setattr("builtins.open", lambda path, *a, **k: (opened.append(str(path)),
                                                                 real_open(path, *a, **k))[1])
    read_corpus(Path(hostile[0]["ALLIANCE_QA_CORPUS"]))
    assert not any(p.endswith("huge.txt") for p in opened)


def test_freshness_reads_no_unchanged_file(hostile, monkeypatch):
    """Checking freshness costs a stat per file: nothing is hashed while nothing changed,
    and only the edited file is once something did."""
    from alliance_qa import indexing
    env, _ = hostile
    manifest = store.read_manifest(Path(env["ALLIANCE_QA_INDEX"]))
    hashed = []
    monkeypatch.setattr(indexing, "file_sha256", lambda path: hashed.append(path.name) or "x")
    corpus = Path(env["ALLIANCE_QA_CORPUS"])
    assert indexing.corpus_changes(manifest, corpus) == [] and hashed == []
    assert run("build", "--check", env=env).returncode == 0


def test_a_stray_byte_costs_one_character_and_a_warning(hostile):
    env, build = hostile
    assert ("stray-byte.md: 1 byte sequence(s) that are not UTF-8 were read as �; save it as "
            "UTF-8") in summary(build)
    cited = run("cite", "stray-byte/introduction#p1", env=env)
    assert "A caf� stood by the harbour lighthouse." in cited.stdout.decode()


def test_document_ids_come_from_the_name_alone(hostile, tmp_path):
    env, _ = hostile
    ids = {d["path"]: d["document"] for d in json.loads(run("sections", "--json", env=env).stdout)}
    assert ids["안보.md"] == "anbo"
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "Безопасность.md").write_text("Text.\n")
    before = {d.path: d.id for d in read_corpus(corpus)[0]}
    (corpus / "Оборона.md").write_text("More text.\n")
    (corpus / "防衛.md").write_text("Still more.\n")
    after = {d.path: d.id for d in read_corpus(corpus)[0]}
    assert before["Безопасность.md"] == after["Безопасность.md"] == "bezopasnost"
    assert after["Оборона.md"] == "oborona" and after["防衛.md"] == "fangwei"
    (corpus / "🙂.md").write_text("Nothing to spell.\n")
    assert re.fullmatch(r"doc-[0-9a-f]{8}", {d.path: d.id for d in read_corpus(corpus)[0]}["🙂.md"])


def test_paragraph_limits_skip_by_name_and_the_build_estimates_its_time(hostile, tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "a.md").write_text("One.\n\nTwo.\n\nThree.\n")
    (corpus / "b.md").write_text("\n\n".join(f"Line {n}." for n in range(50)))
    (corpus / "c.md").write_text("Four.\n\nFive.\n")
    documents, warnings = read_documents(scan_corpus(corpus)[0], max_file_paragraphs=10,
                                         max_corpus_paragraphs=4)
    assert [d.path for d in documents] == ["a.md"]
    assert [str(w) for w in warnings] == [
        "b.md: skipped: it has 50 paragraphs; at most 10 are read from one file",
        "c.md: skipped: the corpus already has 3 paragraphs; at most 4 are indexed"]
    _, build = hostile
    assert b"Embedding will take about" in build.stderr


# ---------------------------------------------------------------- 4, 5, 11, 12, 17: the index

POINTERS = {
    "invalid bytes": lambda p, _: p.write_bytes(b"build-\xff\xfe"),
    "a directory": lambda p, _: (p.unlink(), p.mkdir()),
    "an over-long name": lambda p, _: p.write_text("build-" + "9" * 5000),
    "a link to another file": lambda p, secret: (p.unlink(), p.symlink_to(secret)),
}


@pytest.mark.parametrize("damage", POINTERS)
def test_a_damaged_pointer_is_explained_and_build_repairs_it(copy, damage, tmp_path):
    secret = tmp_path / "secret.txt"
    secret.write_text(f"build-{SECRET}\n")
    pointer = Path(copy["ALLIANCE_QA_INDEX"]) / store.POINTER
    POINTERS[damage](pointer, secret)
    asked = run("ask", "What did the first lamps burn?", env=copy)
    assert asked.returncode == 1
    no_traceback(asked)
    assert b"index pointer" in asked.stderr and b"alliance-qa build" in asked.stderr
    assert SECRET.encode() not in asked.stderr + asked.stdout
    if damage in ("a directory", "a link to another file"):    # one build each: the slowest
        assert run("build", "--full", "--quiet", env=copy).returncode == 0
        assert run("ask", "What did the first lamps burn?", env=copy).returncode == 0
        assert secret.read_text() == f"build-{SECRET}\n"          # the link's target kept


@pytest.mark.parametrize("field, value", [("acronyms", {"LOL": "laugh out loud"}),
                                          ("chunk_count", "many"), ("corpus", [])])
def test_a_rewritten_manifest_field_is_refused(copy, field, value):
    folder = store.live_folder(Path(copy["ALLIANCE_QA_INDEX"]))
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest[field] = value
    (folder / "manifest.json").write_text(json.dumps(manifest))
    asked = run("ask", "What did the first lamps burn?", env=copy)
    assert asked.returncode == 1
    no_traceback(asked)
    assert b"manifest" in asked.stderr and b"alliance-qa build" in asked.stderr
    assert run("build", "--check", env=copy).returncode == 1


def test_one_changed_byte_of_the_export_settings_is_caught(copy, tmp_path):
    encoders = tmp_path / "encoders"
    shutil.copytree(copy["ALLIANCE_QA_ENCODERS"], encoders)
    env = {**copy, "ALLIANCE_QA_ENCODERS": str(encoders)}
    [settings] = encoders.glob("*/encoder.json")
    settings.write_text(settings.read_text().replace('"mean"', '"cls"'))
    check = run("build", "--check", env=env)
    assert check.returncode == 1 and b"ONNX export" in check.stderr
    asked = answers(run("ask", "--json", env=env, stdin=b"What did the first lamps burn?\n"))
    assert asked[0]["passages"][0]["section"] == "Lamps"     # sentence-transformers instead


def test_temporary_folders_of_killed_builds_are_removed_and_two_builds_kept(copy):
    index = Path(copy["ALLIANCE_QA_INDEX"])
    encoders = Path(copy["ALLIANCE_QA_ENCODERS"])
    dead = _dead_pid()
    (index / ".tmp-build-20260101-000000-1-1").mkdir()
    (encoders / f".tmp-{'0' * 32}-{dead}").mkdir()
    for _ in range(2):
        assert run("build", "--quiet", env=copy).returncode == 0
    assert not list(index.glob(".tmp-build-*"))
    assert not (encoders / f".tmp-{'0' * 32}-{dead}").exists()
    builds = sorted(p.name for p in index.glob("build-*"))
    assert len(builds) == 2 and store.live_folder(index).name == builds[-1]


def _dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


def test_cite_and_sections_read_the_index_not_the_edited_corpus(copy, tmp_path):
    corpus = tmp_path / "edited"
    shutil.copytree(copy["ALLIANCE_QA_CORPUS"], corpus, symlinks=True,
                    ignore=shutil.ignore_patterns("pipe.md"))
    (corpus / "guide.md").write_text(GUIDE.replace("whale oil", "olive oil"))
    env = {**copy, "ALLIANCE_QA_CORPUS": str(corpus)}
    cited = run("cite", "guide/lamps#p1", env=env)
    assert "whale oil" in cited.stdout.decode()
    asked = run("ask", "What did the first lamps burn?", env=env)
    assert asked.returncode == 0 and b"guide.md was edited" in asked.stderr


# ---------------------------------------------------------------- 10, 16: questions

@pytest.mark.parametrize("locale", [{"LC_ALL": "C.UTF-8"}, {"PYTHONIOENCODING": "latin-1"}])
def test_bad_bytes_on_standard_input_are_answered_line_by_line_in_valid_utf8(hostile,
                                                                              locale):
    env, _ = hostile
    lines = b"What did the first lamps burn\xff?\n\xfe\xfe\nWho logged the weather?\n"
    result = run("ask", "--json", env={**env, **locale}, stdin=lines)
    assert result.returncode == 0
    no_traceback(result)
    records = answers(result)          # strict UTF-8 decoding and JSON on every line
    assert len(records) == 3
    assert records[0]["passages"][0]["section"] == "Lamps"
    assert "not UTF-8" in records[0]["notices"][0]
    assert "error" in records[1] and "not UTF-8" in records[1]["notices"][0]
    assert records[2]["passages"][0]["section"] == "Keepers"


def test_a_question_in_a_script_the_documents_never_use_abstains_and_says_why(hostile):
    env, _ = hostile
    [record] = answers(run("ask", "--json", env=env,
                           stdin="ما هو الوقود الذي استخدمته المصابيح الأولى؟\n".encode()))
    assert record["abstained"]
    assert "Arabic script" in record["reason"]
