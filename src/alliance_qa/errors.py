"""The named failures of alliance-qa; each carries one sentence on how to fix it.

The command line and the app show `str(error)`: what went wrong, then the fix.
"""

import errno


class AllianceQAError(Exception):
    """Base of every error a user may see; `fix` says what to do about it."""

    fix = ""

    def __init__(self, problem: str, fix: str | None = None):
        super().__init__(problem)
        self.problem = problem
        if fix is not None:
            self.fix = fix

    def __str__(self) -> str:
        return f"{self.problem} {self.fix}".strip()


REBUILD = "Run `alliance-qa build` to rebuild the index."


class IndexMissing(AllianceQAError):
    """There is no index yet."""
    fix = REBUILD


class IndexStale(AllianceQAError):
    """The index was built from other documents or by another version."""
    fix = REBUILD


class IndexCorrupt(AllianceQAError):
    """An index file is damaged or missing."""
    fix = REBUILD


class BuildLocked(AllianceQAError):
    """Another build holds the index folder."""
    fix = "Wait for it to finish, then try again."


class BuildFailed(AllianceQAError):
    """A build stopped; the previous index is kept."""
    fix = ("The previous index, if any, is unchanged; fix the cause and run `alliance-qa build` "
           "again.")


def disk_reason(error: OSError) -> str:
    """Why a write failed, in words."""
    return "the disk is full" if error.errno == errno.ENOSPC else (error.strerror or str(error))


class CorpusEmpty(AllianceQAError):
    """The corpus folder holds nothing to index."""
    fix = ("Add documents (.md, .txt, .pdf, .docx, .html) to the corpus folder, then run "
           "`alliance-qa build`.")


class ModelUnavailable(AllianceQAError):
    """The model cannot be loaded."""
    fix = ("Set ALLIANCE_QA_MODEL (or --model) to a sentence-transformers model folder or a "
           "name already in the local cache, or unset it to use the bundled all-MiniLM-L6-v2.")


class CitationNotFound(AllianceQAError):
    """A citation id names no paragraph or section."""
    fix = "Run `alliance-qa sections` to list the valid citation ids."


class UnknownDocument(AllianceQAError):
    """A document id the index does not hold."""
    fix = "Run `alliance-qa sections` to list the document ids."


class QuestionSetInvalid(AllianceQAError):
    """A question set, conversation set or feedback file that cannot be read."""
    fix = ('Each line of a question set is a JSON object with "question" and "gold" (a list '
           'of section ids, empty when the documents do not answer it), and optionally "id" '
           'and "kind".')


class ClusterUnavailable(AllianceQAError):
    """`build --ray` cannot run: Ray is not installed, not reachable, or a worker failed."""
    fix = ("Install the extra with `pip install 'alliance-qa[cluster]'` (on every node of a "
           "cluster), check the address, or build without --ray.")
