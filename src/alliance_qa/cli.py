"""The command line: build the index, ask it, look citations up, evaluate, benchmark.

Every command resolves its settings once (flag, else ALLIANCE_QA_* environment, else
default) and turns the package's named errors into one sentence on stderr and exit code 1.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .abstention import CHECKS
from .config import Settings
from .errors import AllianceQAError, QuestionSetInvalid
from .formats import answer_json, format_answer

if TYPE_CHECKING:       # the model and the index load only where a command needs them
    from .documents import Document
    from .search import Searcher

EXAMPLES = """examples:
  alliance-qa build
  alliance-qa ask "What did the 1953 treaty provide?" -k 3
  echo "What is THAAD?" | alliance-qa ask --json
  alliance-qa cite us-rok-alliance-history/key-provisions-of-the-treaty#p2
  alliance-qa sections
  alliance-qa eval
  alliance-qa bench
"""


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(corpus_dir=args.corpus, index_dir=args.index, model=args.model)


def _searcher(settings: Settings, checks: tuple[str, ...] = CHECKS) -> Searcher:
    """The searcher; a warning on stderr when the documents changed since the build."""
    from .service import open_searcher
    searcher, warning = open_searcher(settings, checks=checks)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)
    return searcher


# ------------------------------------------------------------------ commands

def cmd_build(args: argparse.Namespace) -> int:
    """Rebuild the index from the corpus (or, with --check, only say whether it is fresh)."""
    settings = _settings(args)
    from .indexing import build_index, check_index
    if args.check:
        reasons = check_index(settings)
        if reasons:
            print(f"The index is stale: {'; '.join(reasons)}. Run `alliance-qa build`.",
                  file=sys.stderr)
            return 1
        print(f"The index in {settings.index_dir} is fresh.")
        return 0
    shown: list[str] = []

    def stages(stage: str, done: float) -> None:        # each stage once, not each slice
        if not shown or shown[-1] != stage:
            shown.append(stage)
            print(stage, file=sys.stderr)

    print(build_index(settings, progress=not args.quiet,
                      on_progress=None if args.quiet else stages, full=args.full,
                      ray=args.ray, workers=args.workers))
    return 0


def _emit(record: dict) -> None:
    """One JSON line, always UTF-8 whatever the locale."""
    sys.stdout.buffer.write((json.dumps(record, ensure_ascii=False) + "\n").encode())
    sys.stdout.buffer.flush()


def _stdin_questions() -> Iterator[tuple[str, tuple[str, ...]]]:
    """Standard input's lines as (question, notices): bytes that are not UTF-8 read as �."""
    for line in sys.stdin.buffer:
        text = line.rstrip(b"\r\n").decode("utf-8", "replace")
        bad = text.count("\ufffd") - line.count("\ufffd".encode())
        yield text, ((f"{bad} byte sequence(s) of this line are not UTF-8 and were read as "
                      "�.",) if bad else ())


def cmd_ask(args: argparse.Namespace) -> int:
    """Answer a question with the best passages; with --json and no question, read stdin."""
    from dataclasses import replace

    from .conversation import Conversation
    from .questions import EmptyQuestion
    settings = _settings(args)
    if args.question is None and not args.json:
        print("Give a question, or use --json to read questions from standard input.",
              file=sys.stderr)
        return 2
    searcher = _searcher(settings)
    questions = [(args.question, ())] if args.question is not None else _stdin_questions()
    conversation = Conversation()
    for question, notices in questions:
        try:
            answer = searcher.search(question, k=args.k, document=args.doc,
                                     context=conversation.context)
            if args.conversation:
                conversation = conversation.after(answer)
        except EmptyQuestion as error:
            if args.json:
                _emit({"question": question, "error": str(error), "notices": list(notices)})
                continue
            raise
        answer = replace(answer, notices=notices + answer.notices)
        if args.json:
            _emit(answer_json(answer))
        else:
            print(format_answer(answer))
    return 0


def _documents(settings: Settings) -> list[Document]:
    """The documents as indexed: a citation from an answer always finds its text."""
    from .store import load_documents
    return load_documents(settings.index_dir)


def cmd_cite(args: argparse.Namespace) -> int:
    """Print the cited paragraph (or section) with its heading and neighbouring paragraphs."""
    from .citations import find_section, resolve
    from .errors import CitationNotFound
    documents = _documents(_settings(args))
    found = resolve(documents, args.id) or find_section(documents, args.id)
    if found is None:
        raise CitationNotFound(f"No paragraph or section is cited as {args.id!r}.")
    section = found.section
    print(f"{found.document.title}\n{found.label}\n{found.id}\n")
    for number, paragraph in enumerate(section.paragraphs, start=1):
        near = found.paragraph is None or abs(number - found.paragraph) <= 1
        if near:
            marker = "▶" if number == found.paragraph else " "
            print(f"{marker} ¶{number} {paragraph}\n")
    return 0


def cmd_sections(args: argparse.Namespace) -> int:
    """The outline of every document, with each section's citation id."""
    from .citations import citation_id, section_label
    documents = _documents(_settings(args))
    if args.json:
        print(json.dumps([{"document": d.id, "title": d.title, "path": d.path, "sections": [
            {"id": citation_id(s), "number": s.number, "heading": s.heading,
             "parent": s.parent, "paragraphs": len(s.paragraphs)} for s in d.sections]}
            for d in documents], ensure_ascii=False, indent=1))
        return 0
    for document in documents:
        print(f"{document.title}  ({document.path})")
        for s in document.sections:
            indent = "  " * max(s.level, 1)
            print(f"{indent}{section_label(s)}  [{len(s.paragraphs)} ¶]  {citation_id(s)}")
    return 0


def cmd_eval(args: argparse.Namespace) -> int:
    """Retrieval and abstention quality, beside BM25 and dense baselines: on every suite in
    eval/ (each a corpus with its questions, on its own index), or with --questions on the
    configured index."""
    from dataclasses import replace

    from .evaluation import (
        EVAL_DIR,
        evaluate,
        evaluate_conversations,
        find_suites,
        format_report,
        load_conversations,
        load_questions,
    )
    settings = _settings(args)
    if args.feedback:
        return _eval_feedback(settings, Path(args.feedback), args.json)
    if args.questions:
        runs = [("", settings, [Path(p) for p in args.questions], None)]
    else:
        suites = [s for s in find_suites(Path(args.suites or EVAL_DIR))
                  if not args.suite or s.name in args.suite]
        if not suites:
            raise QuestionSetInvalid(f"No evaluation suite in {args.suites or EVAL_DIR}.",
                                     "A suite is a folder with a corpus/ folder and question "
                                     "sets (*.jsonl).")
        runs = [(s.name, replace(settings, corpus_dir=s.corpus.resolve(),
                                 index_dir=settings.index_dir / "eval" / s.name),
                 list(s.question_sets), s.conversations) for s in suites]
    reports = {}
    for name, suite_settings, paths, talks in runs:
        questions = load_questions(*paths)     # a bad file is reported before the model loads
        conversations = load_conversations(talks) if talks else []
        if name:
            _fresh(suite_settings)
        searcher = _searcher(suite_settings, tuple(c for c in CHECKS if c not in args.without))
        reports[name] = evaluate(searcher, questions)
        if conversations:
            reports[name]["conversations"] = evaluate_conversations(searcher, conversations)
        if not args.json:
            print((f"== {name} ==\n" if name else "") + format_report(reports[name]) + "\n",
                  flush=True)
    if args.json:
        print(json.dumps(reports if len(reports) > 1 or "" not in reports else reports[""],
                         indent=1, default=str))
    return 0


def _eval_feedback(settings: Settings, path: Path, as_json: bool) -> int:
    """The configured index scored on the choices recorded on the chat page."""
    from . import feedback
    choices = feedback.load(path)
    searcher = _searcher(settings)
    report = feedback.score(choices, [searcher.search(c.question, k=10, context=c.context)
                                      for c in choices])
    if as_json:
        print(json.dumps(report, indent=1))
        return 0
    answered, refused = report["answered"], report["none_answered"]
    print(f"{report['choices']} recorded choices.")
    if answered["questions"]:
        print(f"Answered by a passage ({answered['questions']}): that paragraph first "
              f"{answered['hit1']:.3f}, in the top three {answered['hit3']:.3f}.")
    if refused["questions"]:
        print(f"Answered by none ({refused['questions']}): abstained now "
              f"{refused['abstained_now']}, a refused passage still first "
              f"{refused['refused_passage_first']}.")
    return 0


def _fresh(settings: Settings) -> None:
    """Build a suite's index when it is missing or stale (vectors of unchanged texts kept)."""
    from .errors import IndexCorrupt, IndexMissing, IndexStale
    from .indexing import build_index, check_index
    try:
        stale = check_index(settings)
    except (IndexMissing, IndexCorrupt, IndexStale) as error:
        stale = [str(error)]
    if stale:
        print(f"Building the index of {settings.corpus_dir}…", file=sys.stderr, flush=True)
        build_index(settings)


def _counts(text: str) -> list[int]:
    """"2000,10000" → [2000, 10000]; anything else is a usage error, not a traceback."""
    parts = [n.strip() for n in text.split(",") if n.strip()]
    if not all(n.isdigit() and int(n) > 0 for n in parts):
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of "
                                         "positive whole numbers")
    return [int(n) for n in parts]


def cmd_bench(args: argparse.Namespace) -> int:
    """Latency, build time, start-up time and memory, as medians of repeated runs."""
    from .bench import run_benchmark
    if args.method_scale:
        from .scale import scale_of_the_method
        for line in scale_of_the_method(args.method_scale, _settings(args)):
            print(line, flush=True)
        return 0
    if args.ray_workers:
        from .scale import build_on_ray
        print("\n".join(build_on_ray(args.ray_workers, _settings(args))))
        return 0
    sizes = args.scale or None
    print(run_benchmark(_settings(args), repeats=args.repeats, browser=not args.no_browser,
                        scale=sizes, plot=Path(args.plot) if sizes else None))
    return 0


# ------------------------------------------------------------------ wiring

def parser() -> argparse.ArgumentParser:
    """The `alliance-qa` command and its subcommands."""
    root = argparse.ArgumentParser(prog="alliance-qa", description=__doc__.split("\n")[0],
                                   epilog=EXAMPLES,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--corpus", help="corpus folder (default: corpus/, or ALLIANCE_QA_CORPUS)")
    common.add_argument("--index", help="index folder (default: index/, or ALLIANCE_QA_INDEX)")
    common.add_argument("--model", help="sentence-transformers model name or path "
                                        "(default: the bundled all-MiniLM-L6-v2)")
    commands = root.add_subparsers(dest="command", required=True)

    def add(name: str, handler: Callable[[argparse.Namespace], int],
            **kwargs: Any) -> argparse.ArgumentParser:
        command = commands.add_parser(name, parents=[common], help=handler.__doc__,
                                      description=handler.__doc__, **kwargs)
        command.set_defaults(handler=handler)
        return command

    build = add("build", cmd_build)
    build.add_argument("--check", action="store_true",
                       help="only check freshness (exit 1 if stale)")
    build.add_argument("--quiet", action="store_true", help="no progress bar")
    build.add_argument("--full", action="store_true",
                       help="embed everything again instead of reusing unchanged vectors")
    build.add_argument("--ray", nargs="?", const="local", metavar="ADDRESS",
                       help="embed on Ray Data workers: a local Ray (default) or the cluster "
                            "at ADDRESS (needs alliance-qa[cluster])")
    build.add_argument("--workers", type=int, choices=range(1, 4097), metavar="N",
                       help="Ray workers (default: one per CPU of the cluster)")
    ask = add("ask", cmd_ask)
    ask.add_argument("question", nargs="?", help="the question (omit with --json to read stdin)")
    ask.add_argument("-k", type=int, default=3, choices=range(1, 51), metavar="N",
                     help="how many passages (1-50, default 3)")
    ask.add_argument("--doc", help="search only this document id")
    ask.add_argument("--json", action="store_true", help="one JSON object per question")
    ask.add_argument("--conversation", action="store_true",
                     help="read standard input's lines as one conversation: a follow-up "
                          "(\"What were its provisions?\") is read with the questions before")
    cite = add("cite", cmd_cite)
    cite.add_argument("id", help="a citation id, a section number like 1.2, or a heading")
    sections = add("sections", cmd_sections)
    sections.add_argument("--json", action="store_true")
    evaluate = add("eval", cmd_eval)
    evaluate.add_argument("--questions", nargs="+", default=[], metavar="FILE",
                          help="question sets (JSON lines) to run on the configured index "
                               "instead of the suites")
    evaluate.add_argument("--suites", help="folder of evaluation suites (default: eval/)")
    evaluate.add_argument("--suite", nargs="+", default=[], metavar="NAME",
                          help="only these suites (default: all)")
    evaluate.add_argument("--without", nargs="+", default=[], metavar="CHECK",
                          choices=CHECKS, help=f"switch answer-type checks off: "
                                               f"{', '.join(CHECKS)}")
    evaluate.add_argument("--json", action="store_true")
    evaluate.add_argument("--feedback", metavar="FILE",
                          help="score the configured index on the choices recorded on the chat "
                               "page (ALLIANCE_QA_FEEDBACK)")
    bench = add("bench", cmd_bench)
    bench.add_argument("--repeats", type=int, default=5)
    bench.add_argument("--no-browser", action="store_true", help="skip the browser timings")
    bench.add_argument("--scale", type=_counts, default="10000,100000,1000000",
                       help="vector counts for the search-at-scale table ('' to skip)")
    bench.add_argument("--method-scale", type=_counts, default="", metavar="SIZES",
                       help="instead: build, serve and judge the whole method on corpora of "
                            "these many passages (e.g. 2000,10000; minutes to hours)")
    bench.add_argument("--ray-workers", type=_counts, default="", metavar="COUNTS",
                       help="instead: build the SQuAD suite's corpus plainly and on local Ray "
                            "Data with these numbers of workers (e.g. 1,2; minutes)")
    bench.add_argument("--plot", default="bench-latency.png",
                       help="where to write the latency-by-size plot (PNG)")
    return root


def main(argv: list[str] | None = None) -> int:
    """Run the command; errors a user can fix are one line on standard error, exit 1."""
    for stream in (sys.stdout, sys.stderr):   # a narrow locale never costs a traceback
        stream.reconfigure(errors="backslashreplace")
    args = parser().parse_args(argv)
    try:
        return args.handler(args)
    except AllianceQAError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
