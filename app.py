"""alliance-qa chat: ask about the documents, read the cited passages, open and share them.

A thin layer of widgets over the `alliance_qa` package: the model and the index load once
per server process (`st.cache_resource`, keyed by the live build, so a rebuild takes effect
on the next question); messages and the conversation live in the session, and a question
reruns only the chat (a fragment), not the sidebar; every text is shown escaped, in message
boxes too. A page requested under a name that is not this machine's is refused (DNS
rebinding) unless the server listens on a network on purpose.
"""

from __future__ import annotations

import gc
import threading
import traceback
from pathlib import Path

import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from alliance_qa import feedback, formats, ui
from alliance_qa.citations import Resolved, find_section, resolve
from alliance_qa.config import Settings
from alliance_qa.conversation import Conversation
from alliance_qa.corpus import read_source
from alliance_qa.embedding import QueryEncoder
from alliance_qa.errors import AllianceQAError
from alliance_qa.indexing import build_index, corpus_changes, corpus_signature
from alliance_qa.manifest import Manifest
from alliance_qa.onnx_encoder import question_encoder
from alliance_qa.page_image import cited_page_png
from alliance_qa.search import Answer, Searcher
from alliance_qa.service import refuse_other_builds, refuse_other_model, stale_warning
from alliance_qa.store import load_index, read_manifest

st.set_page_config(page_title="alliance-qa", layout="centered")
if not ui.host_allowed(st.context.headers.get("Host", ""), st.get_option("server.address")):
    st.error("This page was requested under a name that is not this machine's, so it is not "
             "served. Open it as http://localhost:8501.")
    st.stop()
st.markdown(ui.STYLE, unsafe_allow_html=True)
settings = Settings.from_env()


def say(kind: str, text: str, where: DeltaGenerator = st) -> None:
    """A message box ("error", "warning", "info", "success") showing `text` as text: links,
    images and other Markdown in it (from a URL, a question or a document) never render.
    Streamlit's own boxes turn any URL-like text into a link, however it is escaped."""
    where.markdown(ui.alert_html(kind, text), unsafe_allow_html=True)


@st.cache_resource(show_spinner="Loading the language model…")
def encoder_for(model: str, indexed_fingerprint: str) -> QueryEncoder:
    """The model for questions (its ONNX export when the build made one)."""
    return question_encoder(model, settings.encoders, indexed_fingerprint)


@st.cache_resource
def rebuild_guard() -> threading.Lock:
    """One rebuild at a time in this server, whichever visitor asks."""
    return threading.Lock()


@st.cache_resource(show_spinner="Loading the index…", max_entries=2)
def searcher_for(index_dir: str, build_id: str, model: str, fingerprint: str) -> Searcher:
    """One searcher per live build; a new build id (a rebuild) loads the new index. Its
    documents are read now (the page lists them; search alone never needs them), so a
    damaged documents file refuses the index here, with the others."""
    index = load_index(Path(index_dir))
    _ = index.documents
    return Searcher(index, encoder_for(model, fingerprint),
                    max_question_chars=settings.max_question_chars)


def open_searcher() -> tuple[Searcher | None, Manifest | None, str, list[str]]:
    """The searcher, its manifest, why the index cannot serve ("" when it can) and what
    changed in the documents since the build, refused and warned as the command line does."""
    manifest = None
    try:
        manifest = read_manifest(settings.index_dir)
        refuse_other_builds(manifest, settings)
        searcher = searcher_for(str(settings.index_dir), manifest.build_id, settings.model,
                                manifest.model_fingerprint)
        refuse_other_model(manifest, searcher.embedder)
    except AllianceQAError as error:
        return None, manifest, str(error), []
    return searcher, manifest, "", changes_since(manifest.build_id,
                                                 corpus_signature(settings.corpus_dir))


@st.cache_data(max_entries=8, show_spinner=False)
def changes_since(build_id: str, corpus: tuple) -> list[str]:
    """What changed in the documents since the live build; read once per build and corpus
    signature (sizes and times), not on every interaction."""
    return corpus_changes(read_manifest(settings.index_dir), settings.corpus_dir)


def rebuild() -> None:
    """Rebuild with a progress bar, one at a time; the outcome is kept to be shown after the
    rerun, and the encoder loaded for it is released."""
    guard = rebuild_guard()
    if not guard.acquire(blocking=False):
        st.session_state.rebuild_outcome = ("error", "A rebuild is already running; the page "
                                                     "will use its index when it lands.")
        return
    bar = st.sidebar.progress(0.0, text="Starting the rebuild…")
    try:      # it writes the index (and any export) in processes of their own; here it
              # loads only the question encoder it calibrates with, dropped after
        summary = build_index(settings,
                              on_progress=lambda stage, done: bar.progress(done, text=stage))
        st.session_state.rebuild_outcome = ("success", str(summary))
    except AllianceQAError as error:
        st.session_state.rebuild_outcome = ("error", str(error))
    finally:
        gc.collect()
        guard.release()


def sidebar(searcher: Searcher | None, manifest: Manifest | None, changes: list[str]
            ) -> dict:
    """Index status, rebuild, options, citation lookup and the outline; returns the options."""
    bar = st.sidebar
    bar.title("alliance-qa")
    bar.caption("Answers are passages from the documents, each with its citation.")
    if "rebuild_outcome" in st.session_state:
        kind, text = st.session_state.pop("rebuild_outcome")
        say(kind, text, bar)
    if manifest:
        state = ("fresh" if searcher and not changes else
                 "stale: " + "; ".join(changes) if searcher else "not usable")
        runtime = f", questions run by {searcher.embedder.runtime}" if searcher else ""
        bar.markdown(f"<b>Index</b> · {manifest.document_count} document(s), "
                     f"{manifest.section_count} sections, {manifest.chunk_count} passages"
                     f"<br>Model: <code>{ui.escape(manifest.model)}</code>{runtime}"
                     f"<br>Built {ui.escape(manifest.built_at)}<br>Status: {ui.escape(state)}",
                     unsafe_allow_html=True)
    if searcher is None or changes or settings.page_rebuilds:
        if bar.button("Rebuild the index", help="Read the documents again and rebuild the "
                                                "search index"):
            rebuild()
            st.rerun()
    else:
        bar.caption("The index is up to date with the documents.")
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
                say("error", f"Nothing is cited as “{lookup.strip()[:80]}”. Try a section "
                               "number like 1.2, a heading, or an id from a passage.", bar)
        with bar.expander("Browse the outline"):
            shown = documents
            if len(documents) > ui.OUTLINE_DOCUMENTS:     # a library: one outline at a time
                chosen = st.selectbox("Outline of", range(len(documents)),
                                      format_func=lambda n: documents[n].title)
                shown = [documents[chosen]]
            for document in shown:
                st.markdown(ui.outline_html(document), unsafe_allow_html=True)
    return options


def show_cited(searcher: Searcher, cite: str, marks: str | None) -> None:
    """The `?cite=` deep link: the cited paragraph in its section (`hl=` marks the answering
    sentences in it); a PDF's cited page, as an image with the passage marked."""
    found = resolve(searcher.index.documents, cite)
    if not found:
        say("error", f"The link cites “{cite[:120]}”, which names no paragraph or section "
                      "here. The documents may have changed; look the section up in the "
                      "sidebar.")
        return
    emphasis = ui.emphasis_from(marks, found.text) if found.paragraph else None
    with st.container(border=True):
        st.markdown(f"**Cited: {ui.escape(found.label)}** — {ui.escape(found.document.title)}")
        pages = found.section.paragraph_pages(found.paragraph) if found.paragraph else None
        if pages:
            show_pages(found, pages, emphasis)
        st.markdown(ui.section_html(found.section, found.paragraph, emphasis),
                    unsafe_allow_html=True)
        st.code(found.id, language=None)


def show_pages(found: Resolved, pages: tuple[int, int], emphasis: tuple[int, int] | None) -> None:
    """The pages a PDF passage stands on (at most three), rendered, the passage marked."""
    try:
        data = read_source(settings.corpus_dir, found.document.path, found.document.sha256)
    except (OSError, ValueError) as error:
        say("info", f"The page cannot be shown: {found.document.path} {error}.")
        return
    for number in range(pages[0], min(pages[1], pages[0] + 2) + 1):
        try:
            image, marked = cited_page_png(data, number, found.text, emphasis)
        except (ValueError, IndexError, RuntimeError) as error:   # PdfiumError is a RuntimeError
            say("info", f"Page {number} of {found.document.path} cannot be shown ({error}).")
            return
        st.image(image, caption=f"{found.document.title}, p. {number}"
                 + ("" if marked else " (the passage could not be placed on the page)"))


def show_answer(searcher: Searcher | None, answer: Answer) -> None:
    """Notices, then the whole answer as one block of HTML (fast to render, fully escaped)."""
    for notice in answer.notices:
        say("info", notice)
    documents = searcher.index.documents if searcher else []
    sections = [found.section if (found := resolve(documents, hit.chunk.paragraph_id)) else None
                for hit in answer.hits]
    st.markdown(ui.answer_html(answer, sections, len(documents) > 1), unsafe_allow_html=True)


def ask(searcher: Searcher, options: dict, question: str) -> None:
    """Answer the question, read with the conversation so far when it leans on it."""
    st.session_state.messages.append({"role": "user", "content": question})
    conversation = st.session_state.conversation
    try:
        answer = searcher.search(question, k=options["k"], document=options["document"],
                                 context=conversation.context)
    except AllianceQAError as error:     # an empty question, most often: said gently
        st.session_state.messages.append({"role": "assistant", "error": str(error)})
        return
    st.session_state.conversation = conversation.after(answer)
    st.session_state.messages.append({"role": "assistant", "answer": answer,
                                      "context": conversation.context})


def record_choice(message: dict, key: str) -> None:
    """Keep what the person said of an answer, in the server's feedback file."""
    label = st.session_state.get(key)
    if not label or message.get("chosen"):
        return
    hits = message["answer"].hits
    chosen = (feedback.NONE_OF_THESE if label == NONE_LABEL
              else hits[int(label.strip("[]")) - 1].chunk.paragraph_id)
    try:
        feedback.record(settings.feedback, feedback.choice_for(message["answer"],
                                                               message["context"], chosen))
        message["chosen"] = f"Recorded: {label}. Thank you."
    except OSError as error:
        message["chosen"] = (f"Not recorded: the feedback file cannot be written "
                             f"({error.strerror or error}).")


NONE_LABEL = "None of these"


def ask_feedback(message: dict, number: int) -> None:
    """Under an answer: which passage answered it, or none (only with a feedback file)."""
    if message.get("chosen"):
        st.caption(message["chosen"])
        return
    key = f"feedback-{number}"
    options = [f"[{hit.rank}]" for hit in message["answer"].hits] + [NONE_LABEL]
    st.segmented_control("Which passage answered it?", options, key=key,
                         on_change=record_choice, args=(message, key))


def page() -> None:
    """The page, top to bottom."""
    searcher, manifest, problem, changes = open_searcher()
    options = sidebar(searcher, manifest, changes)
    st.session_state.setdefault("messages", [])
    st.session_state.setdefault("conversation", Conversation())

    if problem:
        say("error", problem)
        st.info("Use **Rebuild the index** in the sidebar, or run `alliance-qa build` in a "
                "terminal, then reload this page.")
    elif changes:
        say("warning", stale_warning(changes).replace(
            "Run `alliance-qa build`", "Press Rebuild the index in the sidebar"))

    cite = st.query_params.get("cite")
    if cite and searcher:
        show_cited(searcher, cite, st.query_params.get("hl"))
    chat(searcher, options)


@st.fragment
def chat(searcher: Searcher | None, options: dict) -> None:
    """The conversation: a question reruns only this part of the page, not the sidebar."""
    # No length limit on the box: a longer paste is cut by the search, which says so.
    typed = st.chat_input("Ask about the documents…", disabled=searcher is None)
    question = typed if typed is not None else st.session_state.pop("pending", None)
    if searcher and not st.session_state.messages and question is None:
        st.markdown("Ask a question about the documents. Each answer is the passages that "
                    "answer it best, with citations you can open and check.")
        st.caption("Try one of these:")
        for example in ui.example_questions(searcher.index.documents):
            if st.button(example, use_container_width=True):
                st.session_state.pending = example
                st.rerun()              # asked on a fresh run, where the examples are gone
    if question is not None and searcher:
        ask(searcher, options, question)

    for number, message in enumerate(st.session_state.messages):
        with st.chat_message(message["role"]):
            if message["role"] == "user":
                st.markdown(ui.question_html(message["content"]), unsafe_allow_html=True)
            elif "error" in message:
                say("info", message["error"])
            else:
                show_answer(searcher, message["answer"])
                if settings.feedback and message["answer"].hits:
                    ask_feedback(message, number)

    if st.session_state.messages:
        left, right = st.columns(2)
        if left.button("Clear the chat"):
            st.session_state.messages = []
            st.session_state.conversation = Conversation()
            st.rerun()
        right.download_button("Download the chat (Markdown)",
                              formats.transcript_markdown([m for m in st.session_state.messages
                                                      if "error" not in m]),
                              file_name="alliance-qa-chat.md", mime="text/markdown")


try:
    page()
except AllianceQAError as error:
    say("error", str(error))
except Exception as error:     # never a traceback on the page; the server's log has it
    traceback.print_exc()
    say("error", f"Something went wrong ({type(error).__name__}). Nothing was changed; reload "
                  "the page, and if it happens again, see the terminal running the server.")
