"""alliance-qa chat: ask about the documents, read the cited passages, open and share them.

A thin layer of widgets over the `alliance_qa` package: the model and the index load once
per server process (`st.cache_resource`, keyed by the live build, so a rebuild takes effect
on the next question); messages live in the session; every text is shown escaped.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st

from alliance_qa import ui
from alliance_qa.citations import find_section, resolve
from alliance_qa.config import Settings
from alliance_qa.embedding import Embedder, QueryEncoder
from alliance_qa.errors import AllianceQAError
from alliance_qa.indexing import build_index, corpus_signature, staleness
from alliance_qa.search import Searcher
from alliance_qa.service import open_encoder
from alliance_qa.store import load_index, read_manifest

EXAMPLES = ("What did the 1953 Mutual Defense Treaty commit both countries to?",
            "What is THAAD and why was it deployed?",
            "What are the main controversies in the alliance?")

st.set_page_config(page_title="alliance-qa", layout="centered")
st.markdown(ui.STYLE, unsafe_allow_html=True)
settings = Settings.from_env()


@st.cache_resource(show_spinner="Loading the language model…")
def encoder_for(model: str, indexed_fingerprint: str) -> QueryEncoder:
    """The model for questions (its ONNX export when the build made one)."""
    return open_encoder(settings, indexed_fingerprint)


@st.cache_resource(show_spinner="Loading the language model for the rebuild…")
def embedder_for(model: str) -> Embedder:
    """The model for building (sentence-transformers), loaded only when a rebuild asks."""
    return Embedder(model)


@st.cache_resource(show_spinner="Loading the index…", max_entries=2)
def searcher_for(index_dir: str, build_id: str, model: str, fingerprint: str) -> Searcher:
    """One searcher per live build; a new build id (a rebuild) loads the new index."""
    return Searcher(load_index(Path(index_dir)), encoder_for(model, fingerprint),
                    max_question_chars=settings.max_question_chars)


def open_searcher() -> tuple[Searcher | None, dict | None, str]:
    """The searcher, its manifest, and a problem to show ("" when all is well)."""
    try:
        manifest = read_manifest(settings.index_dir)
        searcher = searcher_for(str(settings.index_dir), manifest["build_id"], settings.model,
                                manifest["model_fingerprint"])
    except AllianceQAError as error:
        return None, None, str(error)
    if searcher.embedder.fingerprint != manifest["model_fingerprint"]:
        return searcher, manifest, ("The index was built with another model than the one "
                                    "configured. Rebuild it from the sidebar or run "
                                    "`alliance-qa build`.")
    return searcher, manifest, ""


@st.cache_data(max_entries=8, show_spinner=False)
def stale_reasons(build_id: str, corpus: tuple) -> list[str]:
    """Why the live build is stale; hashed once per build and corpus signature, not on
    every interaction (a large corpus would be read in full each time)."""
    return staleness(read_manifest(settings.index_dir), settings, check_model=False)


def rebuild() -> None:
    """Rebuild with a progress bar; the outcome is kept to be shown after the rerun."""
    bar = st.sidebar.progress(0.0, text="Starting the rebuild…")
    try:
        summary = build_index(settings, embedder_for(settings.model),
                              on_progress=lambda stage, done: bar.progress(done, text=stage))
        st.session_state.rebuild_outcome = ("success", str(summary))
    except AllianceQAError as error:
        st.session_state.rebuild_outcome = ("error", str(error))


def sidebar(searcher: Searcher | None, manifest: dict | None) -> dict:
    """Index status, rebuild, options, citation lookup and the outline; returns the options."""
    bar = st.sidebar
    bar.title("alliance-qa")
    bar.caption("Answers are passages from the documents, each with its citation.")
    if "rebuild_outcome" in st.session_state:
        kind, text = st.session_state.pop("rebuild_outcome")
        (bar.success if kind == "success" else bar.error)(text)
    if manifest:
        reasons = stale_reasons(manifest["build_id"], corpus_signature(settings.corpus_dir))
        state = "fresh" if not reasons else "stale: " + "; ".join(reasons)
        runtime = f", questions run by {searcher.embedder.runtime}" if searcher else ""
        bar.markdown(f"<b>Index</b> · {manifest['document_count']} document(s), "
                     f"{manifest['section_count']} sections, {manifest['chunk_count']} passages"
                     f"<br>Model: <code>{ui.escape(manifest['model'])}</code>{runtime}"
                     f"<br>Built {ui.escape(manifest['built_at'])}<br>Status: {ui.escape(state)}",
                     unsafe_allow_html=True)
        if reasons:
            bar.warning("The documents changed since the index was built; answers come from "
                        "the old index until you rebuild.")
    if bar.button("Rebuild the index", help="Read corpus/ again and rebuild the search index"):
        rebuild()
        st.rerun()
    options = {"k": bar.slider("Passages per answer", 1, 10, settings.top_k), "document": None}
    documents = searcher.index.documents if searcher else []
    if len(documents) > 1:
        titles = {d.title: d.id for d in documents}
        chosen = bar.selectbox("Search in", ["All documents", *titles])
        options["document"] = titles.get(chosen)
    if documents:
        lookup = bar.text_input("Look up a citation",
                                placeholder="id, section number, heading or label")
        if lookup.strip():
            found = resolve(documents, lookup) or find_section(documents, lookup)
            if found:
                bar.markdown(f"**{ui.escape(found.label)}**")
                bar.markdown(ui.section_html(found.section, found.paragraph) if not
                             found.paragraph else ui.escape(found.text), unsafe_allow_html=True)
            else:
                bar.error(f"Nothing is cited as “{lookup.strip()[:80]}”. Try a section number "
                          "like 1.2, a heading, or an id from a passage.")
        with bar.expander("Browse the outline"):
            for document in documents:
                st.markdown(ui.outline_html(document), unsafe_allow_html=True)
    return options


def show_cited(searcher: Searcher, cite: str) -> None:
    """The `?cite=` deep link: the cited paragraph, in its section."""
    found = resolve(searcher.index.documents, cite)
    if not found:
        st.error(f"The link cites “{cite[:120]}”, which names no paragraph or section here. "
                 "The documents may have changed; look the section up in the sidebar.")
        return
    with st.container(border=True):
        st.markdown(f"**Cited: {ui.escape(found.label)}** — {ui.escape(found.document.title)}")
        st.markdown(ui.section_html(found.section, found.paragraph), unsafe_allow_html=True)
        st.code(found.id, language=None)


def show_answer(answer) -> None:
    """Notices, then the whole answer as one block of HTML (fast to render, fully escaped)."""
    for notice in answer.notices:
        st.info(notice)
    documents = searcher.index.documents if searcher else []
    sections = [found.section if (found := resolve(documents, hit.chunk.paragraph_id)) else None
                for hit in answer.hits]
    st.markdown(ui.answer_html(answer, sections, len(documents) > 1), unsafe_allow_html=True)


def ask(question: str) -> None:
    st.session_state.messages.append({"role": "user", "content": question})
    try:
        answer = searcher.search(question, k=options["k"], document=options["document"])
    except AllianceQAError as error:     # an empty question, most often: said gently
        st.session_state.messages.append({"role": "assistant", "error": str(error)})
        return
    st.session_state.messages.append({"role": "assistant", "answer": answer})


searcher, manifest, problem = open_searcher()
options = sidebar(searcher, manifest)
st.session_state.setdefault("messages", [])

if problem:
    (st.warning if searcher else st.error)(problem)
    if not searcher:
        st.info("Use **Rebuild the index** in the sidebar, or run `alliance-qa build` in a "
                "terminal, then reload this page.")

cite = st.query_params.get("cite")
if cite and searcher:
    show_cited(searcher, cite)

if searcher and not st.session_state.messages:
    st.markdown("Ask a question about the documents. Each answer is the passages that "
                "answer it best, with citations you can open and check.")
    st.caption("Try one of these:")
    for example in EXAMPLES:
        if st.button(example, use_container_width=True):
            st.session_state.pending = example

typed = st.chat_input("Ask about the documents…", disabled=searcher is None,
                      max_chars=settings.max_question_chars * 100)
question = typed if typed is not None else st.session_state.pop("pending", None)
if question is not None and searcher:
    ask(question)

for message in st.session_state.messages:
    with st.chat_message(message["role"]):
        if message["role"] == "user":
            st.markdown(ui.question_html(message["content"]), unsafe_allow_html=True)
        elif "error" in message:
            st.info(message["error"])
        else:
            show_answer(message["answer"])

if st.session_state.messages:
    left, right = st.columns(2)
    if left.button("Clear the chat"):
        st.session_state.messages = []
        st.rerun()
    right.download_button("Download the chat (Markdown)",
                          ui.transcript_markdown([m for m in st.session_state.messages
                                                  if "error" not in m]),
                          file_name="alliance-qa-chat.md", mime="text/markdown")
