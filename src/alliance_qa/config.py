"""Settings, resolved once at a program's edge: argument, else environment, else default
(`corpus/` and `index/` in the current folder, where the app and the command are run)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace
from pathlib import Path

BUNDLED_MODEL = "bundled:all-MiniLM-L6-v2"
ENVIRONMENT = {"corpus_dir": "ALLIANCE_QA_CORPUS", "index_dir": "ALLIANCE_QA_INDEX",
               "model": "ALLIANCE_QA_MODEL", "encoders_dir": "ALLIANCE_QA_ENCODERS",
               "page_rebuilds": "ALLIANCE_QA_PAGE_REBUILDS",
               "feedback": "ALLIANCE_QA_FEEDBACK"}
YES = ("1", "true", "yes", "on")


@dataclass(frozen=True)
class Settings:
    """Where the corpus, the index and the model are, and the page's options."""
    corpus_dir: Path = field(default_factory=lambda: Path.cwd() / "corpus")
    index_dir: Path = field(default_factory=lambda: Path.cwd() / "index")
    model: str = BUNDLED_MODEL
    encoders_dir: Path | None = None     # the model's ONNX exports; default <index>/encoders
    top_k: int = 3
    max_question_chars: int = 1000
    page_rebuilds: bool = False      # any visitor may rebuild, even a fresh index
    feedback: Path | None = None     # where the page records "this answered it"; None: off

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides: object) -> Settings:
        """Defaults, overridden by ALLIANCE_QA_* variables, overridden by non-None keywords."""
        env = os.environ if environ is None else environ
        settings = cls()
        from_env = {field: env.get(name) for field, name in ENVIRONMENT.items()}
        chosen = {k: v for k, v in from_env.items() if v}
        chosen.update({k: v for k, v in overrides.items() if v is not None})
        for key in ("corpus_dir", "index_dir", "encoders_dir", "feedback"):
            if key in chosen:
                chosen[key] = Path(chosen[key]).expanduser().resolve()
        if isinstance(chosen.get("page_rebuilds"), str):
            chosen["page_rebuilds"] = chosen["page_rebuilds"].strip().lower() in YES
        return replace(settings, **chosen)

    def as_env(self) -> dict[str, str]:
        """The environment variables that give another process these settings."""
        values = {"corpus_dir": self.corpus_dir, "index_dir": self.index_dir,
                  "model": self.model, "encoders_dir": self.encoders,
                  "page_rebuilds": "1" if self.page_rebuilds else "",
                  "feedback": self.feedback or ""}
        return {name: str(values[field]) for field, name in ENVIRONMENT.items()}

    @property
    def encoders(self) -> Path:
        """The folder of the model's ONNX exports."""
        return self.encoders_dir or self.index_dir / "encoders"
