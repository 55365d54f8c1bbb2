"""See why: an HTML view of the sentence scores, like displaCy.

``render(doc)`` shows, for each doc, the summary (the selected sentences) on top,
then the document with every sentence shaded by its score, the selected sentences
underlined and, with ``gold_key``, the gold (oracle) sentences marked. The HTML is
self-contained (inline CSS, no scripts, fonts or other assets) and all document
text is escaped. ``serve(doc)`` serves the same page over HTTP.

Colours: a single-hue (blue) scale, readable for colour-blind readers and in
grayscale print; the marks for selected and gold sentences are lines (solid
underline, dashed overline) so they do not depend on colour either.
"""
import bisect
import re
from html import escape
from typing import Iterable, List, Optional, Sequence, Tuple, Union

from spacy.tokens import Doc

from .util import REFERENCE_KEY, SPANS_KEY, get_reference, get_sent_scores, has_sentences

ID_KEY = "bertsum_id"  # same key as spacy_bertsum.convert.ID_KEY

#: Sequential single-hue scale (ColorBrewer "Blues"): score 0 -> LOW, 1 -> HIGH.
#: Dark text on HIGH still has a contrast ratio above 7:1.
SCALE_LOW = (0xF7, 0xFB, 0xFF)
SCALE_HIGH = (0x6B, 0xAE, 0xD6)
SELECTED_COLOR = "#08306b"
GOLD_COLOR = "#b35806"

CSS = """
.bertsum-render { font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  color: #1a1a1a; background: #ffffff; max-width: 48rem; margin: 0 auto; padding: 0.75rem;
  line-height: 1.5; box-sizing: border-box; overflow-wrap: anywhere; word-wrap: break-word; }
.bertsum-render * { box-sizing: border-box; }
.bertsum-render h1 { font-size: 1.4rem; margin: 0.25rem 0 0.75rem; }
.bertsum-render h2 { font-size: 1.15rem; margin: 0 0 0.5rem; }
.bertsum-render h3 { font-size: 0.8rem; margin: 0.75rem 0 0.35rem; text-transform: uppercase; letter-spacing: 0.04em; color: #444; }
.bertsum-render .bertsum-note { background: #fff8e1; border-left: 4px solid #8a6d00; padding: 0.4rem 0.6rem; margin: 0.5rem 0; font-size: 0.9rem; }
.bertsum-render .bertsum-legend { display: flex; flex-wrap: wrap; gap: 0.4rem 1.2rem; align-items: center; font-size: 0.85rem;
  border: 1px solid #d0d7de; border-radius: 6px; padding: 0.5rem 0.7rem; margin: 0 0 1rem; }
.bertsum-render .bertsum-legend-item { display: inline-flex; align-items: center; gap: 0.4rem; }
.bertsum-render .bertsum-scale { display: inline-block; width: 7rem; height: 0.9rem; border: 1px solid #999; border-radius: 3px;
  background: linear-gradient(to right, rgb(%(low)s), rgb(%(high)s)); -webkit-print-color-adjust: exact; print-color-adjust: exact; }
.bertsum-render .bertsum-doc { border-top: 2px solid #d0d7de; padding: 0.75rem 0 1rem; }
.bertsum-render .bertsum-meta { font-size: 0.85rem; color: #555; font-weight: normal; }
.bertsum-render .bertsum-summary, .bertsum-render .bertsum-reference { background: #f6f8fa; border: 1px solid #d0d7de; border-radius: 6px; padding: 0.2rem 0.8rem 0.5rem; }
.bertsum-render .bertsum-reference { margin-top: 0.5rem; }
.bertsum-render .bertsum-summary ol, .bertsum-render .bertsum-reference ul { margin: 0.2rem 0; padding-left: 1.4rem; }
.bertsum-render .bertsum-summary li, .bertsum-render .bertsum-reference li { margin: 0.15rem 0; }
.bertsum-render .bertsum-score { font-size: 0.8rem; color: #555; font-variant-numeric: tabular-nums; white-space: nowrap; }
.bertsum-render .bertsum-text { white-space: pre-wrap; line-height: 1.9; margin: 0; }
.bertsum-render .bertsum-sent { padding: 0.1em 0.1em; border-radius: 2px; -webkit-box-decoration-break: clone; box-decoration-break: clone;
  -webkit-print-color-adjust: exact; print-color-adjust: exact; }
.bertsum-render [data-selected], .bertsum-render .bertsum-swatch-selected { border-bottom: 3px solid %(selected)s; font-weight: 600; }
.bertsum-render [data-gold], .bertsum-render .bertsum-swatch-gold { border-top: 2px dashed %(gold)s; }
.bertsum-render .bertsum-swatch { display: inline-block; min-width: 3.2rem; text-align: center; padding: 0 0.3rem; border-radius: 2px;
  background: rgb(%(mid)s); -webkit-print-color-adjust: exact; print-color-adjust: exact; }
@media print { .bertsum-render .bertsum-sent[data-score]::after { content: " [" attr(data-score) "]"; font-size: 0.7em; font-weight: normal; } }
"""


def _rgb(t: Tuple[int, int, int]) -> str:
    return ", ".join(str(c) for c in t)


def score_color(score: float) -> str:
    """The background colour for a score in [0, 1] (clipped), as ``rgb(...)``."""
    t = min(max(float(score), 0.0), 1.0)
    return "rgb(" + _rgb(tuple(round(lo + (hi - lo) * t) for lo, hi in zip(SCALE_LOW, SCALE_HIGH))) + ")"


def _css(minify: bool) -> str:
    mid = tuple(round((lo + hi) / 2) for lo, hi in zip(SCALE_LOW, SCALE_HIGH))
    css = CSS % {
        "low": _rgb(SCALE_LOW),
        "high": _rgb(SCALE_HIGH),
        "mid": _rgb(mid),
        "selected": SELECTED_COLOR,
        "gold": GOLD_COLOR,
    }
    if minify:
        css = re.sub(r"\s*\n\s*", " ", css)
        css = re.sub(r"\s*([{};,])\s*", r"\1", css)
    return css.strip()


def _sentences(doc: Doc) -> list:
    if len(doc) == 0:
        return []
    if not has_sentences(doc):
        return [doc[:]]
    return list(doc.sents)


def _sent_indices(doc: Doc, sents: Sequence, key: Optional[str]) -> Optional[List[int]]:
    """Indices of the sentences that the spans in ``doc.spans[key]`` start in,
    in span order, or None if the doc has no such group."""
    if key is None or key not in doc.spans:
        return None
    starts = [sent.start for sent in sents]
    indices = []
    for span in doc.spans[key]:
        i = bisect.bisect_right(starts, span.start) - 1
        if i >= 0:
            indices.append(i)
    return indices


def _fmt(score: float) -> str:
    return f"{score:.3f}"


def _render_doc(doc: Doc, number: int, total: int, spans_key: str, gold_key: Optional[str]) -> List[str]:
    sents = _sentences(doc)
    scores = get_sent_scores(doc, spans_key)
    notes = []
    if scores is None:
        notes.append(
            "No bertsum scores on this document (it was not processed by the bertsum "
            f"component with spans_key '{spans_key}'): shown without shading."
        )
    elif len(scores) != len(sents):
        notes.append(
            f"The stored scores ({len(scores)}) do not match the document's sentences "
            f"({len(sents)}): shown without shading."
        )
        scores = None
    selected_list = _sent_indices(doc, sents, spans_key)
    selected = set(selected_list or [])
    gold_list = _sent_indices(doc, sents, gold_key)
    gold = set(gold_list or [])
    if gold_key is not None and gold_list is None:
        notes.append(f"No gold sentences on this document (no doc.spans['{gold_key}']).")

    out = ['<article class="bertsum-doc">']
    meta = [f"{len(sents)} sentence{'s' if len(sents) != 1 else ''}", f"{len(selected)} selected"]
    if gold_list is not None:
        meta.append(f"{len(gold)} gold")
    doc_id = doc.user_data.get(ID_KEY) if doc.user_data else None
    if doc_id not in (None, ""):
        meta.insert(0, f"id {escape(str(doc_id))}")
    out.append(
        f"<h2>Document {number} of {total} "
        f'<span class="bertsum-meta">({" &middot; ".join(meta)})</span></h2>'
    )
    for note in notes:
        out.append(f'<p class="bertsum-note">{escape(note)}</p>')

    # The summary on top: the selected sentences in document order.
    out.append('<section class="bertsum-summary"><h3>Summary (selected sentences)</h3>')
    if selected_list is None:
        out.append(f"<p>No summary: the document has no doc.spans[&#x27;{escape(spans_key)}&#x27;].</p>")
    elif not doc.spans[spans_key]:
        out.append("<p>No sentence selected.</p>")
    else:
        items = []
        for span, i in zip(doc.spans[spans_key], selected_list):
            score = f' <span class="bertsum-score">({_fmt(scores[i])})</span>' if scores is not None else ""
            items.append(f"<li>{escape(span.text.strip())}{score}</li>")
        out.append("<ol>" + "".join(items) + "</ol>")
    out.append("</section>")

    reference = get_reference(doc) if REFERENCE_KEY in doc.user_data else None
    if reference:
        out.append('<section class="bertsum-reference"><h3>Reference summary</h3><ul>')
        out.append("".join(f"<li>{escape(s.strip())}</li>" for s in reference))
        out.append("</ul></section>")

    # The document, sentence by sentence. No newlines inside: the paragraph is pre-wrap.
    out.append("<h3>Document</h3>")
    text = doc.text
    parts = ['<p class="bertsum-text">']
    pos = 0
    for i, sent in enumerate(sents):
        raw = text[sent.start_char : sent.end_char]
        core = raw.strip()
        if core:
            start = sent.start_char + (len(raw) - len(raw.lstrip()))
            end = start + len(core)
        else:
            start, end = sent.start_char, sent.end_char
        if start > pos:
            parts.append(escape(text[pos:start]))
        classes = ["bertsum-sent"]
        attrs = [f'data-index="{i}"']
        title = [f"sentence {i + 1}"]
        style = ""
        if scores is not None:
            score = float(scores[i])
            attrs.append(f'data-score="{_fmt(score)}"')
            title.append(f"score {_fmt(score)}")
            style = f' style="background-color: {score_color(score)}"'
        if i in selected:
            classes.append("bertsum-selected")
            attrs.append('data-selected="true"')
            title.append("selected")
        if i in gold:
            classes.append("bertsum-gold")
            attrs.append('data-gold="true"')
            title.append("gold")
        parts.append(
            f'<span class="{" ".join(classes)}" {" ".join(attrs)} '
            f'title="{escape(" · ".join(title))}"{style}>{escape(text[start:end])}</span>'
        )
        pos = end
    if pos < len(text):
        parts.append(escape(text[pos:]))
    parts.append("</p>")
    if not sents:
        parts = ['<p class="bertsum-note">Empty document.</p>']
    out.append("".join(parts))
    out.append("</article>")
    return out


def _legend(gold_key: Optional[str]) -> str:
    items = [
        '<span class="bertsum-legend-item">score 0 <span class="bertsum-scale" role="img" '
        'aria-label="colour scale from score 0 (light) to 1 (blue)"></span> 1</span>',
        '<span class="bertsum-legend-item"><span class="bertsum-swatch bertsum-swatch-selected">'
        "selected</span> in the summary</span>",
    ]
    if gold_key is not None:
        items.append(
            '<span class="bertsum-legend-item"><span class="bertsum-swatch bertsum-swatch-gold">'
            "gold</span> oracle sentence</span>"
        )
    items.append('<span class="bertsum-legend-item">hover a sentence for its score</span>')
    return '<div class="bertsum-legend">' + "".join(items) + "</div>"


def render(
    docs: Union[Doc, Iterable[Doc]],
    *,
    page: bool = False,
    minify: bool = False,
    spans_key: str = SPANS_KEY,
    gold_key: Optional[str] = None,
    max_docs: Optional[int] = None,
    title: str = "spacy-bertsum",
    jupyter: Optional[bool] = None,
) -> Optional[str]:
    """HTML showing why the summary was chosen, for a Doc or a list of Docs.

    docs: processed docs (``doc.user_data["bertsum_scores"]`` and
        ``doc.spans[spans_key]``); docs without scores are shown unshaded with a note.
    page: a full HTML document (True) or a fragment for a notebook or another page.
    minify: drop the newlines and indentation between tags.
    spans_key: the bertsum component's ``spans_key``.
    gold_key: mark the sentences of ``doc.spans[gold_key]`` as gold (oracle).
    max_docs: render at most this many docs, with a "showing N of M" note.
    title: the page title (and heading, with ``page=True``).
    jupyter: True: display the HTML in the notebook and return None; None
        (default): do that when running in Jupyter and ``page`` is False, as
        displaCy does; False: always return the HTML.
    RETURNS: the HTML, or None when displayed in Jupyter.
    """
    doc_list = [docs] if isinstance(docs, Doc) else list(docs)
    shown = doc_list if max_docs is None else doc_list[: max(int(max_docs), 0)]
    markup = render_docs(
        shown, len(doc_list), page=page, minify=minify, spans_key=spans_key, gold_key=gold_key, title=title
    )
    if jupyter or (jupyter is None and not page and _in_jupyter()):
        from IPython.display import HTML, display

        display(HTML(markup))
        return None
    return markup


def page_head(title: str, style: str = "") -> List[str]:
    """The lines of a self-contained page up to ``</head>`` (phone-ready viewport)."""
    return [
        "<!DOCTYPE html>",
        '<html lang="en">',
        "<head>",
        '<meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title>",
        *([f"<style>{style}</style>"] if style else []),
        "</head>",
    ]


def render_docs(
    shown: Sequence[Doc],
    total: int,
    *,
    page: bool = False,
    minify: bool = False,
    spans_key: str = SPANS_KEY,
    gold_key: Optional[str] = None,
    title: str = "spacy-bertsum",
) -> str:
    """The markup for the first ``len(shown)`` docs of ``total`` (see ``render``)."""
    sep = "" if minify else "\n"
    parts = [f'<div class="bertsum-render"><style>{_css(minify)}</style>']
    if page:
        parts.append(f"<h1>{escape(title)}</h1>")
    if len(shown) < total:
        parts.append(f'<p class="bertsum-note bertsum-max-docs">Showing {len(shown)} of {total} documents.</p>')
    if not total:
        parts.append('<p class="bertsum-note">No documents.</p>')
    else:
        parts.append(_legend(gold_key))
    for n, doc in enumerate(shown, start=1):
        parts.extend(_render_doc(doc, n, total, spans_key, gold_key))
    parts.append("</div>")
    markup = sep.join(parts)
    if page:
        head = page_head(title) + ['<body style="margin: 0; background: #ffffff;">']
        markup = sep.join(head + [markup, "</body>", "</html>"])
    return markup


def _in_jupyter() -> bool:
    from spacy.util import is_in_jupyter

    return is_in_jupyter()


def make_app(markup: str):
    """A WSGI app that answers every request with ``markup``."""
    body = markup.encode("utf8")

    def app(environ, start_response):
        start_response("200 OK", [("Content-type", "text/html; charset=utf-8"), ("Content-Length", str(len(body)))])
        return [body]

    return app


def serve(
    docs: Union[Doc, Iterable[Doc]],
    *,
    port: int = 5000,
    host: str = "127.0.0.1",
    auto_select_port: bool = False,
    **render_kwargs,
) -> None:
    """Serve the ``render`` page over HTTP until Ctrl-C, like ``displacy.serve``.

    host: the interface to listen on: this machine only by default; "0.0.0.0"
        serves every interface (the page shows the articles: mind who can reach it).
    render_kwargs: passed to ``render`` (``page`` is always True).
    """
    from wsgiref import simple_server

    from spacy.util import find_available_port

    port = find_available_port(port, host, auto_select_port)
    render_kwargs = {**render_kwargs, "page": True, "jupyter": False}
    markup = render(docs, **render_kwargs)
    httpd = simple_server.make_server(host, port, make_app(markup))
    shown_host = "localhost" if host in ("0.0.0.0", "::", "") else host
    note = " (all interfaces)" if host in ("0.0.0.0", "::", "") else ""
    print(f"\nServing on http://{shown_host}:{port}{note} ... (Ctrl-C to stop)\n", flush=True)
    try:
        httpd.serve_forever()
    except KeyboardInterrupt:
        print(f"Shutting down server on port {port}.")
    finally:
        httpd.server_close()
