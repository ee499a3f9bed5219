"""alliance-qa: offline, citation-first question answering over a document collection."""

__version__ = "0.1.0"
