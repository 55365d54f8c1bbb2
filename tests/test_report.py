"""The evaluation report: metrics it adds to `evaluate`, the HTML, the command."""
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser

import pytest
from spacy.tokens import DocBin, SpanGroup
from typer.testing import CliRunner

from spacy_bertsum.cli import app
from spacy_bertsum.cli.evaluate import POSITION_BINS, evaluate
from spacy_bertsum.cli._svg import bar_chart_svg, round_axis
from spacy_bertsum.cli.report import build_report, length_bins
from spacy_bertsum.util import REFERENCE_KEY, SPANS_KEY

from .util import make_examples

# 24 sentences over the tiny encoder's vocabulary; the gold sentence is the 23rd.
LONG_TEXT = " ".join(
    f"The team won the cup after a late goal {'and ' * (i % 3)}the fans celebrated." for i in range(24)
)
LONG_GOLD = (0, 22)


def gold_docs(nlp):
    """Reference docs like `convert` writes: oracle spans + reference sentences."""
    docs = [eg.reference for eg in make_examples(nlp, gold_ids=(1, 2))]
    long_doc = nlp.get_pipe("sentencizer")(nlp.make_doc(LONG_TEXT))
    sents = list(long_doc.sents)
    assert len(sents) == 24
    gold = [sents[i] for i in LONG_GOLD]
    long_doc.spans[SPANS_KEY] = SpanGroup(long_doc, name=SPANS_KEY, spans=gold)
    long_doc.user_data[REFERENCE_KEY] = [s.text for s in gold]
    long_doc.user_data["bertsum_id"] = "long<1>"
    return docs + [long_doc]


@pytest.fixture
def gold_path(nlp, tmp_path):
    path = tmp_path / "gold.spacy"
    DocBin(docs=gold_docs(nlp), store_user_data=True).to_disk(path)
    return path


class Tags(HTMLParser):
    def __init__(self):
        super().__init__()
        self.tags = []

    def handle_starttag(self, tag, attrs):
        self.tags.append((tag, dict(attrs)))

    def with_class(self, name):
        return [a for t, a in self.tags if name in (a.get("class") or "").split()]


def test_positions_and_lengths(nlp):
    docs = gold_docs(nlp)
    result = evaluate(nlp, docs, show_progress=False)
    predicted = list(nlp.pipe(d.text for d in docs))
    n = len(docs)
    assert result["n_docs"] == n
    assert set(result["positions"]) == {"model", "lead3", "textrank", "oracle"}
    for counts in result["positions"].values():
        assert list(counts) == POSITION_BINS
    # Lead-3: exactly min(3, n_sents) selections per doc, at 0, 1, 2
    lead = result["positions"]["lead3"]
    assert lead["0"] == lead["1"] == lead["2"] == n
    assert sum(lead.values()) == sum(min(3, len(list(d.sents))) for d in predicted)
    # oracle: sentences 1 and 2 of the short docs; 0 and 22 (-> "20+") of the long one
    oracle = result["positions"]["oracle"]
    assert oracle["1"] == oracle["2"] == n - 1
    assert oracle["0"] == 1 and oracle["20+"] == 1
    assert sum(oracle.values()) == 2 * n
    # model: where the component's selected sentences are
    model = result["positions"]["model"]
    expected = {b: 0 for b in POSITION_BINS}
    for doc in predicted:
        starts = [s.start for s in doc.sents]
        for span in doc._.summary_sents:
            i = starts.index(span.start)
            expected[str(i) if i < 20 else "20+"] += 1
    assert model == expected
    # summary lengths in words, one per doc
    words = result["summary_words"]
    assert words["model"] == [len(d._.summary.split()) for d in predicted]
    assert words["lead3"] == [sum(len(s.text.split()) for s in list(d.sents)[:3]) for d in predicted]
    assert words["reference"] == [sum(len(s.split()) for s in d.user_data[REFERENCE_KEY]) for d in docs]
    assert words["oracle"] == words["reference"]  # the reference is the oracle here
    # the existing keys are still there
    assert {"rouge", "n_longer_than_window", "window_wordpieces", "seconds", "docs_per_second"} <= set(result)
    assert result["rouge"]["oracle"]["rouge1"] == pytest.approx(100.0)


def test_on_doc_callback(nlp):
    docs = gold_docs(nlp)
    # No reference at all (neither the stored one nor gold spans, from which the
    # registered scorer would take it): the doc is skipped.
    del docs[0].user_data[REFERENCE_KEY]
    del docs[0].spans["bertsum"]
    seen = []
    result = evaluate(nlp, docs, show_progress=False, on_doc=lambda g, p: seen.append((g, p)))
    assert [g for g, _ in seen] == docs
    assert [p.text for _, p in seen] == [d.text for d in docs]
    assert result["n_docs"] == len(docs) - 1 and result["n_skipped_no_reference"] == 1
    assert len(result["summary_words"]["reference"]) == len(docs) - 1


def test_build_report_html(nlp):
    docs = gold_docs(nlp)
    html, result = build_report(nlp, docs, html_docs=3, show_progress=False, model_name="m<odel>", data_name="d.spacy")
    assert html.startswith("<!DOCTYPE html>")
    assert '<meta name="viewport" content="width=device-width, initial-scale=1">' in html
    assert "m&lt;odel&gt;" in html and "m<odel>" not in html
    # self-contained: no scripts or external resources
    assert not re.search(r"""<script|<link|(src|href)\s*=|@import|url\(""", html, re.I)
    parser = Tags()
    parser.feed(html)
    # the ROUGE table with the four systems
    rows = [a["data-system"] for t, a in parser.tags if t == "tr" and "data-system" in a]
    assert rows == ["model", "lead3", "textrank", "oracle"]
    for system in ("model", "lead3", "textrank", "oracle"):
        assert f"{result['rouge'][system]['rouge2']:.2f}" in html
    assert "Lead-3" in html and "ROUGE-Lsum" in html
    # two inline SVG charts, well-formed XML with axis labels and a legend
    svgs = re.findall(r"<svg.*?</svg>", html, re.S)
    assert len(svgs) == html.count("<svg") == 2
    for svg in svgs:
        root = ET.fromstring(svg)
        texts = [t.text for t in root.iter("{http://www.w3.org/2000/svg}text")]
        assert "model (bertsum)" in texts and "oracle" in texts
        assert any(t and t.startswith("share of") for t in texts)
    assert "sentence position in the document (0 = first)" in svgs[0]
    assert "20+" in svgs[0]
    assert "reference" in svgs[1]
    # the first 3 docs rendered, gold sentences marked
    assert html.count('<article class="bertsum-doc">') == 3
    assert "Document 1 of 5" in html and "Document 4 of 5" not in html
    gold = parser.with_class("bertsum-gold")
    assert [int(a["data-index"]) for a in gold] == [1, 2] * 3
    selected = parser.with_class("bertsum-selected")
    predicted = list(nlp.pipe(d.text for d in docs[:3]))
    assert len(selected) == sum(len(d._.summary_sents) for d in predicted)
    assert "Reference summary" in html
    # counts
    assert re.search(r"<td>documents evaluated</td><td>5</td>", html)
    assert "longer than the encoder&#x27;s 512-wordpiece window" in html


def test_report_shows_long_doc_and_id(nlp):
    docs = gold_docs(nlp)
    html, _ = build_report(nlp, docs[-1:], html_docs=5, show_progress=False)
    parser = Tags()
    parser.feed(html)
    assert html.count('<article class="bertsum-doc">') == 1
    assert "long&lt;1&gt;" in html
    assert [int(a["data-index"]) for a in parser.with_class("bertsum-gold")] == list(LONG_GOLD)
    assert len(parser.with_class("bertsum-sent")) == 24


def test_report_command(nlp, gold_path, tmp_path):
    model_path = tmp_path / "model"
    nlp.to_disk(model_path)
    output = tmp_path / "out" / "report.html"
    result = CliRunner().invoke(
        app,
        ["report", str(model_path), str(gold_path), "--output", str(output), "--limit", "4", "--html-docs", "2"],
    )
    assert result.exit_code == 0, result.output
    html = output.read_text(encoding="utf8")
    assert html.count("<svg") == 2
    assert html.count('<article class="bertsum-doc">') == 2
    assert "Document 2 of 4" in html
    assert re.search(r"<td>documents evaluated</td><td>4</td>", html)
    assert 'data-system="oracle"' in html and 'data-system="lead3"' in html
    assert len(re.findall(r'class="bertsum-sent[^"]*bertsum-gold', html)) == 4


def test_chart_helpers():
    svg = bar_chart_svg(["a", "b<"], [("x & y", [10.0, 55.5], "#2166ac")], title="T", x_label="X", y_label="Y")
    root = ET.fromstring(svg)
    bars = [r for r in root.iter("{http://www.w3.org/2000/svg}rect") if r.find("{http://www.w3.org/2000/svg}title") is not None]
    assert len(bars) == 2
    assert float(bars[1].get("height")) > float(bars[0].get("height")) > 0
    assert "b&lt;" in svg and "x &amp; y" in svg
    assert ET.fromstring(bar_chart_svg([], [], title="empty", x_label="X", y_label="Y")) is not None
    # round axes: from 0 for the bars, around the values for the curves
    assert round_axis(0.0, 55.5) == (0, 60, 20)
    assert round_axis(1.0, 3.0) == (1.0, 3.0, 0.5)
    assert round_axis(5.0, 5.0) == (4.0, 6.0, 0.5)  # one value: a range around it
    # bins up to the 98th percentile (196 here), the outlier in a last "200+" bin
    labels, width, first, n_regular = length_bins(list(range(200)) + [5000])
    assert (width, first, n_regular) == (20, 0, 10)
    assert labels == [str(20 * i) for i in range(10)] + ["200+"]
    labels, width, first, n_regular = length_bins([3, 7, 9])
    assert (labels, width, first, n_regular) == (["0", "5"], 5, 0, 2)
    # starts at the first non-empty bin
    labels, width, first, n_regular = length_bins([41, 45, 52, 58, 63])
    assert (labels, width, first, n_regular) == (["40", "45", "50", "55", "60+"], 5, 8, 4)
    assert length_bins([]) == (["0"], 10, 0, 1)
