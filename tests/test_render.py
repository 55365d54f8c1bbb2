"""The HTML sentence view: escaping, marks, page/fragment, a real browser."""
import re
import shutil
import socket
import subprocess
import threading
import urllib.request
from html.parser import HTMLParser
from pathlib import Path

import pytest
import spacy
from spacy.tokens import SpanGroup

import spacy_bertsum
from spacy_bertsum.render import make_app, render, score_color, serve

from .util import TEXTS

HOSTILE = (
    'Breaking news <script>alert(1)</script> in town. A "quoted" word and "onmouseover="x here. '
    "Tom & Jerry's <b>bold</b> claim was false. Officials said nothing else."
)


class Collect(HTMLParser):
    """Start tags with their attributes, and the text inside <script> tags."""

    def __init__(self):
        super().__init__()
        self.tags = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))
        if tag == "script":
            self.scripts += 1

    def sents(self):
        return [a for t, a in self.tags if t == "span" and "bertsum-sent" in (a.get("class") or "").split()]


def parse(html):
    parser = Collect()
    parser.feed(html)
    parser.close()
    return parser


def has_class(attrs, name):
    return name in (attrs.get("class") or "").split()


def test_exported():
    assert spacy_bertsum.render is render
    assert spacy_bertsum.serve is serve


def test_escapes_hostile_text(nlp):
    doc = nlp(HOSTILE)
    html = render(doc, page=True)
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "<b>" not in html
    assert "&quot;onmouseover=&quot;x" in html
    assert 'onmouseover="x' not in html
    parsed = parse(html)
    assert parsed.scripts == 0
    # no attribute came from the document text
    for _, attrs in parsed.tags:
        assert not any(name.startswith("on") for name in attrs)
    # the text round-trips: the parsed sentence view holds exactly the doc text
    sents = parsed.sents()
    assert len(sents) == len(list(doc.sents))


def test_selected_scores_and_titles(nlp):
    docs = list(nlp.pipe(TEXTS))
    html = render(docs)
    parsed = parse(html)
    sents = parsed.sents()
    assert len(sents) == sum(len(list(d.sents)) for d in docs)
    selected = [a for a in sents if has_class(a, "bertsum-selected")]
    assert len(selected) == sum(len(d._.summary_sents) for d in docs)
    assert all(a.get("data-selected") == "true" for a in selected)
    assert not any(a.get("data-selected") for a in sents if not has_class(a, "bertsum-selected"))
    scores = [s for d in docs for s in d._.sent_scores]
    assert [float(a["data-score"]) for a in sents] == pytest.approx(scores, abs=5e-4)
    for attrs, score in zip(sents, scores):
        assert f"score {score:.3f}" in attrs["title"]
        assert score_color(score) in attrs["style"]
    # per doc: the selected sentence indices are the summary's
    first = docs[0]
    starts = [s.start for s in first.sents]
    expected = [starts.index(s.start) for s in first._.summary_sents]
    marked = [int(a["data-index"]) for a in sents[: len(starts)] if has_class(a, "bertsum-selected")]
    assert marked == expected
    # the summary box on top lists the selected sentences
    assert html.index("Summary (selected sentences)") < html.index('class="bertsum-text"')
    for span in first._.summary_sents:
        assert f"<li>{span.text.strip()}" in html


def test_exactly_selected_one_doc(nlp):
    doc = nlp(TEXTS[1], component_cfg={"bertsum": {"top_k": 2}})
    html = render(doc)
    # the marks appear on the selected sentences only (not in the CSS or legend)
    assert html.count("bertsum-selected") == len(doc._.summary_sents) == 2
    assert html.count('data-selected="true"') == 2
    assert len([a for a in parse(html).sents() if has_class(a, "bertsum-selected")]) == 2


def test_gold_marking(nlp):
    doc = nlp(TEXTS[0])
    sents = list(doc.sents)
    html = render(doc)
    assert not [a for a in parse(html).sents() if has_class(a, "bertsum-gold")]
    # a gold_key without spans on the doc: a note, no marks
    html = render(doc, gold_key="gold")
    assert "No gold sentences" in html
    doc.spans["gold"] = SpanGroup(doc, name="gold", spans=[sents[0], sents[3]])
    html = render(doc, gold_key="gold")
    gold = [a for a in parse(html).sents() if has_class(a, "bertsum-gold")]
    assert [int(a["data-index"]) for a in gold] == [0, 3]
    assert all(a["data-gold"] == "true" for a in gold)
    assert "gold" in gold[0]["title"]


def test_gold_doc_without_scores(nlp):
    """A gold doc from `convert`: oracle spans under "bertsum", no scores."""
    doc = nlp.get_pipe("sentencizer")(nlp.make_doc(TEXTS[2]))
    sents = list(doc.sents)
    doc.spans["bertsum"] = [sents[1], sents[2]]
    html = render(doc, gold_key="bertsum")
    assert "No bertsum scores" in html
    parsed = parse(html).sents()
    assert len(parsed) == len(sents)
    assert not any("data-score" in a or "style" in a for a in parsed)
    assert [int(a["data-index"]) for a in parsed if has_class(a, "bertsum-gold")] == [1, 2]


def test_unsegmented_and_empty_docs():
    nlp = spacy.blank("en")
    html = render([nlp("No sentence boundaries here at all"), nlp("")])
    parsed = parse(html).sents()
    assert len(parsed) == 1
    assert "Empty document." in html


def test_page_vs_fragment(nlp):
    doc = nlp(TEXTS[0])
    fragment = render(doc)
    page = render(doc, page=True, title="My <title>")
    assert not fragment.lstrip().lower().startswith("<!doctype")
    assert "<html" not in fragment and "<head" not in fragment and "<body" not in fragment
    assert fragment.startswith('<div class="bertsum-render">') and fragment.rstrip().endswith("</div>")
    assert page.startswith("<!DOCTYPE html>")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in page
    assert '<meta charset="utf-8">' in page
    assert "<title>My &lt;title&gt;</title>" in page
    assert fragment[fragment.index("<article") :] in page
    assert "<h1>My &lt;title&gt;</h1>" in page and "<h1>" not in fragment
    # self-contained: no external resources, no scripts
    for html in (fragment, page):
        assert not re.search(r"""(src|href)\s*=|@import|url\(|<link|<script""", html, re.I)
    # minify drops the newlines between tags but not the document's own
    newline_doc = nlp("First line here.\n\nSecond paragraph starts. It ends.")
    small = render(newline_doc, minify=True)
    assert "\n\n" in small and len(small) < len(render(newline_doc))
    assert small.count("\n") == 2


def test_max_docs_note(nlp):
    docs = list(nlp.pipe(TEXTS))
    html = render(docs, max_docs=2)
    assert "Showing 2 of 4 documents." in html
    assert html.count('<article class="bertsum-doc">') == 2
    assert "Document 2 of 4" in html and "Document 3 of 4" not in html
    full = render(docs, max_docs=10)
    assert "Showing" not in full
    assert full.count('<article class="bertsum-doc">') == 4


def test_scale_is_monotonic():
    from spacy_bertsum.render import SCALE_HIGH, SCALE_LOW

    def lum(color):
        r, g, b = (int(c) for c in re.findall(r"\d+", color))
        return r + g + b

    values = [lum(score_color(s / 10)) for s in range(11)]
    assert values == sorted(values, reverse=True)  # darker as the score grows
    assert score_color(-1) == score_color(0) and score_color(2) == score_color(1)
    assert score_color(0) == "rgb(%d, %d, %d)" % SCALE_LOW
    assert score_color(1) == "rgb(%d, %d, %d)" % SCALE_HIGH


def test_wsgi_app_and_serve(nlp, monkeypatch, capsys):
    doc = nlp(TEXTS[3])
    statuses = []
    body = b"".join(make_app("<p>hi</p>")({}, lambda status, headers: statuses.append((status, dict(headers)))))
    assert body == b"<p>hi</p>" and statuses[0][0] == "200 OK"
    assert statuses[0][1]["Content-type"].startswith("text/html")

    # serve for real: one request, then return
    from wsgiref.simple_server import WSGIServer

    monkeypatch.setattr(WSGIServer, "serve_forever", lambda self: self.handle_request())
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    thread = threading.Thread(target=serve, args=(doc,), kwargs={"port": port, "host": "127.0.0.1", "max_docs": 1})
    thread.start()
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5) as response:
                    page = response.read().decode("utf8")
                break
            except OSError:
                thread.join(0.05)
        else:
            pytest.fail("the server did not answer")
    finally:
        thread.join(10)
    assert page.startswith("<!DOCTYPE html>")
    assert page.count('<article class="bertsum-doc">') == 1
    assert f"http://127.0.0.1:{port}" in capsys.readouterr().out


def find_chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    return "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None


def run_chromium(browser, profile, *args):
    cmd = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        *args,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60)


@pytest.mark.slow
def test_headless_browser(nlp, tmp_path):
    browser = find_chromium()
    if browser is None:
        pytest.skip("chromium is not installed: apt-get install chromium")
    docs = list(nlp.pipe([HOSTILE] + TEXTS[:2]))
    page_path = tmp_path / "page.html"
    page_path.write_text(render(docs, page=True, title="browser test"), encoding="utf8")
    url = page_path.resolve().as_uri()

    result = run_chromium(browser, tmp_path / "profile", "--dump-dom", url)
    assert result.returncode == 0, result.stderr[-2000:]
    dom = result.stdout
    assert "<title>browser test</title>" in dom
    parsed = parse(dom)
    sents = parsed.sents()
    assert len(sents) == sum(len(list(d.sents)) for d in docs)
    selected = [a for a in sents if has_class(a, "bertsum-selected")]
    assert len(selected) == sum(len(d._.summary_sents) for d in docs)
    # the hostile text stayed text: no script element in the parsed DOM
    assert parsed.scripts == 0
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in dom

    shot = tmp_path / "shot.png"
    result = run_chromium(
        browser, tmp_path / "profile", "--hide-scrollbars", f"--screenshot={shot}", "--window-size=412,900", url
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert shot.exists()
    data = shot.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(data) > 5000
    width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
    assert (width, height) == (412, 900)


def test_jupyter(nlp, monkeypatch):
    """In a notebook a fragment is displayed (as displaCy does); a page is returned."""
    import sys
    import types

    # (spacy_bertsum.render is the function; the module is in sys.modules)
    render_module = sys.modules[render.__module__]

    shown = []
    fake = types.ModuleType("IPython.display")
    fake.HTML = lambda markup: ("HTML", markup)
    fake.display = shown.append
    monkeypatch.setitem(sys.modules, "IPython", types.ModuleType("IPython"))
    monkeypatch.setitem(sys.modules, "IPython.display", fake)
    doc = nlp(TEXTS[0])
    monkeypatch.setattr(render_module, "_in_jupyter", lambda: True)
    assert render(doc) is None
    assert shown[-1][0] == "HTML" and 'class="bertsum-render"' in shown[-1][1]
    assert render(doc, jupyter=False).startswith('<div class="bertsum-render">')
    assert render(doc, page=True).startswith("<!DOCTYPE html>")
    assert len(shown) == 1
    monkeypatch.setattr(render_module, "_in_jupyter", lambda: False)
    assert render(doc).startswith("<div")
    assert render(doc, jupyter=True) is None and len(shown) == 2


def test_serve_listens_on_this_machine_only_by_default(nlp, monkeypatch, capsys):
    from wsgiref import simple_server

    seen = {}

    class Stop(Exception):
        pass

    def fake_make_server(host, port, app):
        seen["host"] = host
        raise Stop()

    monkeypatch.setattr(simple_server, "make_server", fake_make_server)
    with pytest.raises(Stop):
        serve(nlp("One sentence here. Another one."), port=5123, auto_select_port=True)
    assert seen["host"] == "127.0.0.1"
