"""What a build records about itself (`manifest.json`): one dataclass, one writer, one reader.

The JSON carries a checksum of its own content, and every field is checked for its type when
it is read, so a rewritten or damaged manifest is refused like any damaged index file.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import get_type_hints

from .errors import IndexCorrupt, IndexStale
from .integrity import SEAL, is_sealed, sealed

FORMAT_VERSION = 1


@dataclass(frozen=True)
class Manifest:
    """What a build records about itself (see the module's docstring)."""
    model: str                     # the configured name ("bundled:…", a path, a cache name)
    model_fingerprint: str         # SHA-256 over the model's files
    corpus_encoder: str            # what embedded the corpus (indexing.corpus_encoder)
    dimension: int
    max_tokens: int
    recipe: str                    # digest of the code and data a build runs (indexing.py)
    corpus: dict                   # relative path → SHA-256 ("" when too big or unreadable)
    corpus_stat: dict              # relative path → [size, modification time in ns]
    skipped: dict                  # relative path → why it was not indexed
    document_count: int
    section_count: int
    chunk_count: int
    sentence_count: int
    acronyms: dict                 # acronym → its expansion, as the corpus defines it
    scripts: list                  # the writing systems of the corpus's letters
    related_words: int             # entries in related-words.json
    slow_questions: str            # why questions are not encoded by ONNX ("" when they are)
    built_at: str
    build_seconds: float
    versions: dict                 # library → version
    calibration: dict = field(default_factory=dict)     # abstention.Calibration, as a dict
    # Set when the build is written:
    build_id: str = ""
    vector_indexes: dict = field(default_factory=dict)  # view → its FAISS index described
    files: dict = field(default_factory=dict)           # file name → SHA-256
    format_version: int = FORMAT_VERSION

    def to_json(self) -> bytes:
        """The manifest as written: sealed with a checksum of its own content."""
        return json.dumps(sealed(asdict(self)), ensure_ascii=False, indent=2).encode()

    @classmethod
    def from_json(cls, data: bytes, where: str) -> Manifest:
        """A manifest read back: IndexCorrupt when it is not JSON, a field has the wrong type
        or its checksum does not match; IndexStale when an older version wrote it."""
        try:
            record = json.loads(data)
        except ValueError as error:
            raise IndexCorrupt(f"The index manifest in {where} is unreadable or malformed.") \
                from error
        if not isinstance(record, dict):
            raise IndexCorrupt(f"The index manifest in {where} lacks required fields.")
        if record.get("format_version") != FORMAT_VERSION:
            raise IndexCorrupt(f"The index in {where} has format version "
                               f"{record.get('format_version')!r}; this program reads "
                               f"{FORMAT_VERSION}.")
        names = {f.name for f in fields(cls)}
        if SEAL not in record or not names <= record.keys():
            raise IndexStale(f"The index in {where} was built by an older version of "
                             "alliance-qa.")
        types = get_type_hints(cls)
        wrong = [name for name in names if not _is(record[name], types[name])]
        if wrong:
            raise IndexCorrupt(f"The index manifest in {where} has fields of the wrong type "
                               f"({', '.join(sorted(wrong))}).")
        if not is_sealed(record):
            raise IndexCorrupt(f"The index manifest in {where} does not match its checksum "
                               "(changed or damaged since the build).")
        return cls(**{name: record[name] for name in names})


def _is(value: object, kind: type) -> bool:
    if kind is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(value, kind)
