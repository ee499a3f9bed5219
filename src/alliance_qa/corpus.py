"""The corpus folder → Documents: which files are read, how they are decoded, their ids.

The one module that reads `corpus/`. What it refuses, it names in a warning and skips; the
rest is still read:
- links whose target lies outside the corpus folder, broken links and link loops (a cloned
  or unpacked corpus must not expose other files the server can read), links to folders,
  and anything that is not a regular file (fifo, device, socket);
- file names that are not valid UTF-8;
- files over `MAX_FILE_BYTES` (checked before a byte is read; text files over
  `MAX_TEXT_BYTES`), binary text files, PDF, Word or web pages their reader cannot read
  (encrypted, damaged, no text layer), files without paragraphs, files over
  `MAX_FILE_PARAGRAPHS`, and files past `MAX_CORPUS_PARAGRAPHS`.
"""

from __future__ import annotations

import codecs
import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from .documents import Document, make_document, parse_document, slugify
from .readers import READERS

TEXT_SUFFIXES = (".md", ".markdown", ".txt")
SUFFIXES = TEXT_SUFFIXES + tuple(READERS)
MAX_FILE_BYTES = 100_000_000         # a PDF of a thousand scanned-and-OCRed pages fits
MAX_TEXT_BYTES = 20_000_000
MAX_FILE_PARAGRAPHS = 20_000         # a 1,000-page book has about 10,000
MAX_CORPUS_PARAGRAPHS = 1_000_000


@dataclass(frozen=True)
class CorpusFile:
    """A file of the corpus to read, with what `stat` said of it."""
    path: Path            # where it is read from (a link inside the corpus, resolved)
    relative: str         # relative to the corpus folder, with "/" separators
    size: int
    mtime_ns: int


@dataclass(frozen=True)
class CorpusWarning:
    """A file that was skipped or read with a problem, and why."""
    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path}: {self.message}"


def readable(name: str) -> str:
    """A file name as text that can always be printed (bytes that are not UTF-8 as �)."""
    return name.encode("utf-8", "surrogateescape").decode("utf-8", "replace")


def _examine(path: Path, root: Path) -> tuple[str, os.stat_result | None]:
    """(why the entry at `path` is not read, "" when it is a regular file to read; its
    status)."""
    try:
        if path.is_symlink() and not path.resolve(strict=True).is_relative_to(root):
            return "skipped: it links to a file outside the corpus folder", None
        status = path.stat()
    except RuntimeError:                        # a link loop, as Python 3.11 reports it
        return "skipped: it is a link that loops", None
    except OSError as error:
        if error.errno == errno.ELOOP:
            return "skipped: it is a link that loops", None
        if path.is_symlink():
            return "skipped: it is a broken link", None
        return f"skipped: it cannot be read ({error.strerror or error})", None
    if not stat.S_ISREG(status.st_mode):
        return "skipped: it is not a regular file (a fifo, device or socket)", None
    return "", status


def scan_corpus(corpus_dir: Path) -> tuple[list[CorpusFile], list[CorpusWarning]]:
    """Every readable file with a suffix in SUFFIXES below the folder (hidden ones excepted),
    sorted, with its size and modification time; and a warning for each one refused. Folders are
    walked without following links; a linked file is read only when it lies inside."""
    if not corpus_dir.is_dir():
        return [], []
    root = corpus_dir.resolve()
    files, warnings = [], []
    for folder, subfolders, names in os.walk(corpus_dir, followlinks=False):
        here = Path(folder)
        visible = [s for s in subfolders if not s.startswith(".")]
        subfolders[:] = [s for s in visible if not (here / s).is_symlink()]
        for name in visible:
            if (here / name).is_symlink():
                warnings.append(CorpusWarning(readable((here / name).relative_to(corpus_dir)
                                                       .as_posix()),
                                              "skipped: links to folders are not followed"))
        for name in names:
            path = here / name
            relative = path.relative_to(corpus_dir).as_posix()
            if name.startswith(".") or Path(name).suffix.lower() not in SUFFIXES:
                continue
            shown = readable(relative)
            why, status = ("skipped: its name is not valid UTF-8 (rename it)", None) \
                if shown != relative else _examine(path, root)
            if status is None:
                warnings.append(CorpusWarning(shown, why))
            else:
                files.append(CorpusFile(path, relative, status.st_size, status.st_mtime_ns))
    return sorted(files, key=lambda f: f.relative), sorted(warnings, key=lambda w: w.path)


def read_source(corpus_dir: Path, relative: str, sha256: str) -> bytes:
    """The bytes of an indexed document, for showing it: only a regular file inside the
    corpus folder (by the same rules as the scan), and only while it is the file that was
    indexed. Raises ValueError saying why not."""
    path = corpus_dir / relative
    root = corpus_dir.resolve()
    if ".." in Path(relative).parts or Path(relative).is_absolute() or \
            not path.resolve().is_relative_to(root):
        raise ValueError("it is not inside the corpus folder")
    why, status = _examine(path, root)
    if status is None:
        raise ValueError(why.removeprefix("skipped: "))
    if status.st_size > MAX_FILE_BYTES:
        raise ValueError(f"it is larger than {MAX_FILE_BYTES // 1_000_000} MB")
    data = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ValueError("it has changed since the index was built (rebuild the index)")
    return data


def decode(data: bytes) -> tuple[str, int]:
    """Bytes → (text, how many invalid UTF-8 sequences were replaced by U+FFFD): UTF-16 with
    a BOM, else UTF-8 (with or without BOM). Raises ValueError for data that looks binary."""
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return data.decode("utf-16", "replace"), 0
    if b"\x00" in data[:8192]:
        raise ValueError("looks like a binary file (it contains NUL bytes)")
    text = data.decode("utf-8-sig", "replace")
    return text, text.count("\ufffd") - data.count("\ufffd".encode())


def document_id(relative_path: str) -> str:
    """A stable id from the path alone: 'sub/My File.md' → 'sub/my-file'; a name with
    nothing left to spell it gets a short hash of the path ('doc-3f2a9c1e')."""
    parts = [slugify(part, "") for part in Path(relative_path).with_suffix("").parts]
    if not all(parts):
        digest = hashlib.sha256(relative_path.encode()).hexdigest()[:8]
        parts = [part or f"doc-{digest}" for part in parts]
    return "/".join(parts)


def _unique(base: str, relative: str, taken: set[str]) -> str:
    """The base id, or when another file has it, the base with this file's suffix
    ('a.txt' beside 'a.md' → 'a-txt'), else with a hash of its path."""
    for candidate in (base, f"{base}-{slugify(Path(relative).suffix, '')}",
                      f"{base}-{hashlib.sha256(relative.encode()).hexdigest()[:8]}"):
        if candidate not in taken:
            return candidate
    raise AssertionError("unreachable: a hash of a unique path")


def _parse(data: bytes, relative: str, doc_id: str) -> tuple[Document, int]:
    """(the document, how many bytes were not UTF-8); ValueError when it cannot be read."""
    digest = hashlib.sha256(data).hexdigest()
    reader = READERS.get(Path(relative).suffix.lower())
    if reader:
        return make_document(*reader(data, doc_id), relative, doc_id, digest), 0
    text, replaced = decode(data)
    return parse_document(text, relative, doc_id, digest), replaced


def read_corpus(corpus_dir: Path) -> tuple[list[Document], list[CorpusWarning]]:
    """Read every document; a file that cannot be used becomes a warning, not an error."""
    files, refused = scan_corpus(corpus_dir)
    documents, warnings = read_documents(files)
    return documents, refused + warnings


def read_documents(files: list[CorpusFile], max_file_paragraphs: int = MAX_FILE_PARAGRAPHS,
                   max_corpus_paragraphs: int = MAX_CORPUS_PARAGRAPHS
                   ) -> tuple[list[Document], list[CorpusWarning]]:
    """Read and parse the scanned files, in order, within the size and paragraph limits."""
    reader = DocumentReader(files, max_file_paragraphs, max_corpus_paragraphs)
    return list(reader), reader.warnings


class DocumentReader:
    """The scanned files' documents, each read and parsed as the iteration reaches it (a
    build holds one batch of them at a time), within the size and paragraph limits; what
    was skipped, or read with a problem, is in `warnings` once an iteration has ended.
    Each iteration reads the files again."""

    def __init__(self, files: list[CorpusFile], max_file_paragraphs: int = MAX_FILE_PARAGRAPHS,
                 max_corpus_paragraphs: int = MAX_CORPUS_PARAGRAPHS):
        self.files = files
        self.max_file_paragraphs, self.max_corpus_paragraphs = (max_file_paragraphs,
                                                                max_corpus_paragraphs)
        self.warnings: list[CorpusWarning] = []

    def __iter__(self) -> Iterator[Document]:
        self.warnings = warnings = []
        taken, total = set(), 0
        for file in self.files:
            def skip(message: str, file: CorpusFile = file) -> None:
                warnings.append(CorpusWarning(file.relative, f"skipped: {message}"))

            suffix = Path(file.relative).suffix.lower()
            limit = MAX_FILE_BYTES if suffix in READERS else MAX_TEXT_BYTES
            too_large = f"it is larger than {limit // 1_000_000} MB"
            if file.size > limit:
                skip(too_large)
                continue
            doc_id = _unique(document_id(file.relative), file.relative, taken)
            try:
                with open(file.path, "rb") as handle:
                    data = handle.read(limit + 1)
                if len(data) > limit:
                    raise ValueError(too_large)
                document, replaced = _parse(data, file.relative, doc_id)
            except OSError as error:
                skip(f"it cannot be read ({error.strerror or error})")
                continue
            except ValueError as error:
                skip(str(error))
                continue
            paragraphs = sum(len(s.paragraphs) for s in document.sections)
            if not paragraphs:
                skip("it has no paragraphs of text")
                continue
            if paragraphs > self.max_file_paragraphs:
                skip(f"it has {paragraphs:,} paragraphs; at most {self.max_file_paragraphs:,} "
                     "are read from one file")
                continue
            if total + paragraphs > self.max_corpus_paragraphs:
                skip(f"the corpus already has {total:,} paragraphs; at most "
                     f"{self.max_corpus_paragraphs:,} are indexed")
                continue
            total += paragraphs
            taken.add(doc_id)
            if replaced:
                warnings.append(CorpusWarning(file.relative, f"{replaced} byte sequence(s) that "
                                              "are not UTF-8 were read as �; save it as UTF-8"))
            parents = {s.parent for s in document.sections}
            empty = [s.heading for s in document.sections
                     if not s.paragraphs and s.slug not in parents]   # a parent's text is below
            if empty:
                warnings.append(CorpusWarning(file.relative, f"{len(empty)} heading(s) with no "
                                              "text: " + ", ".join(repr(h) for h in empty[:3])))
            yield document
