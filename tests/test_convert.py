import json

import pytest
import spacy
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_bertsum.cli import app
from spacy_bertsum.cli.convert import ConvertStats, convert, read_jsonl
from spacy_bertsum.oracle import greedy_oracle
from spacy_bertsum.util import REFERENCE_KEY, SPANS_KEY

from .util import write_jsonl

ART_1 = (
    "The quick brown fox jumps over the lazy dog. "
    "Stock markets fell sharply on Monday amid inflation fears. "
    "Scientists discovered a new species of frog in the rainforest. "
    "The weather tomorrow will be sunny."
)
ART_2 = "Mo Farah broke the European record in Lisbon. He won in 59 minutes. Kogo was second."
ART_3 = "Nothing here matches. Really nothing at all."

GOOD_1 = {"id": "a1", "article": ART_1, "highlights": [
    "Scientists discovered a new frog species.", "The quick brown fox jumps."]}  # fmt: skip
GOOD_2 = {
    "id": 7,
    "article": ART_2,
    "highlights": "Farah broke the European record. He won in Lisbon.",
}
GOOD_3 = {"article": ART_3, "highlights": ["Zebra xylophone quartz."]}  # oracle selects nothing

# (line text, expected problem or None); line numbers are 1-based and include blank lines.
LINES = [
    (json.dumps(GOOD_1), None),  # 1
    ("{not json", "invalid JSON"),  # 2
    ("", None),  # 3 blank: ignored
    (json.dumps({"highlights": ["x"]}), "missing field 'article'"),  # 4
    (json.dumps({"article": 12, "highlights": ["x"]}), "field 'article' must be a string"),  # 5
    (json.dumps({"article": "   ", "highlights": ["x"]}), "empty 'article'"),  # 6
    (json.dumps(GOOD_2), None),  # 7: summary as one string
    (json.dumps({"article": ART_1}), "missing field 'highlights'"),  # 8
    (json.dumps({"article": ART_1, "highlights": [1, 2]}), "list of strings"),  # 9
    (json.dumps({"article": ART_1, "highlights": ["", " "]}), "empty 'highlights'"),  # 10
    (json.dumps([1, 2]), "expected a JSON object"),  # 11
    (json.dumps(GOOD_3), None),  # 12
]
BAD_LINES = {i + 1: p for i, (line, p) in enumerate(LINES) if p is not None}
runner = CliRunner()


def _nlp():
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    return nlp


def _read(path):
    nlp = _nlp()
    return list(DocBin().from_disk(path).get_docs(nlp.vocab))


@pytest.fixture
def mixed(tmp_path):
    return write_jsonl(tmp_path / "data.jsonl", [line for line, _ in LINES])


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.xz"])
def test_read_jsonl(tmp_path, suffix):
    path = write_jsonl(tmp_path / f"data{suffix}", [line for line, _ in LINES])
    rows = list(read_jsonl(path))
    assert [n for n, _ in rows] == [1, 2, 4, 5, 6, 7, 8, 9, 10, 11, 12]
    assert rows[0][1] == GOOD_1
    assert isinstance(rows[1][1], ValueError)
    assert rows[-1][1] == GOOD_3


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.xz"])
def test_convert_skip(tmp_path, suffix, capsys):
    path = write_jsonl(tmp_path / f"data{suffix}", [line for line, _ in LINES])
    out = tmp_path / "sub" / "out.spacy"
    stats = convert(path, out, show_progress=False)
    assert isinstance(stats, ConvertStats)
    assert stats.written == 3
    assert stats.skipped == len(BAD_LINES) == len(stats.errors)
    for message, (line_no, problem) in zip(stats.errors, sorted(BAD_LINES.items())):
        assert message.startswith(f"line {line_no}: ")
        assert problem in message
    printed = capsys.readouterr().out
    assert "line 4: missing field 'article'" in printed  # reported, not silent

    docs = _read(out)
    assert len(docs) == 3
    nlp = _nlp()
    for doc, record in zip(docs, [GOOD_1, GOOD_2, GOOD_3]):
        assert doc.text == record["article"]
        assert doc.has_annotation("SENT_START")
        sents = list(doc.sents)
        assert [s.text for s in sents] == [s.text for s in nlp(record["article"]).sents]
        reference = list(doc.user_data[REFERENCE_KEY])
        expected = greedy_oracle([s.text for s in sents], reference)
        group = doc.spans[SPANS_KEY]
        assert [(sp.start, sp.end) for sp in group] == [
            (sents[i].start, sents[i].end) for i in expected
        ]

    doc1, doc2, doc3 = docs
    assert list(doc1.user_data[REFERENCE_KEY]) == GOOD_1["highlights"]
    assert [sp.text for sp in doc1.spans[SPANS_KEY]] == [
        "The quick brown fox jumps over the lazy dog.",
        "Scientists discovered a new species of frog in the rainforest.",
    ]
    assert doc1.user_data["bertsum_id"] == "a1"
    # A summary string is split into sentences with the same pipeline.
    assert list(doc2.user_data[REFERENCE_KEY]) == [
        "Farah broke the European record.",
        "He won in Lisbon.",
    ]
    assert doc2.user_data["bertsum_id"] == "7"
    assert len(doc2.spans[SPANS_KEY]) >= 1
    # Nothing selected: still written, with an empty span group.
    assert SPANS_KEY in doc3.spans and len(doc3.spans[SPANS_KEY]) == 0
    assert "bertsum_id" not in doc3.user_data


def test_convert_fail(mixed, tmp_path):
    with pytest.raises(ValueError, match=r"line 2: invalid JSON"):
        convert(mixed, tmp_path / "out.spacy", on_error="fail", show_progress=False)
    ok = write_jsonl(tmp_path / "ok.jsonl", [json.dumps(GOOD_1), json.dumps({"article": ART_2})])
    with pytest.raises(ValueError, match=r"line 2: missing field 'highlights'"):
        convert(ok, tmp_path / "out.spacy", on_error="fail", show_progress=False)


@pytest.mark.parametrize("limit,expected", [(0, 0), (1, 1), (2, 2), (10, 3)])
def test_limit(mixed, tmp_path, limit, expected):
    out = tmp_path / "out.spacy"
    stats = convert(mixed, out, limit=limit, show_progress=False)
    assert stats.written == expected
    assert len(_read(out)) == expected
    if limit == 1:
        assert stats.skipped == 0  # stops reading once the limit is reached


def test_skip(mixed, tmp_path):
    """--skip leaves out the first N records, malformed ones included (they
    are not read, so not reported); --limit counts what is written after them."""
    out = tmp_path / "out.spacy"
    stats = convert(mixed, out, skip=1, show_progress=False)
    docs = _read(out)
    assert stats.written == 2 and [d.user_data.get("bertsum_id") for d in docs] == ["7", None]
    stats = convert(mixed, out, skip=5, limit=1, show_progress=False)  # lines 1-6, four of them malformed
    assert (stats.written, stats.skipped) == (1, 0) and _read(out)[0].user_data["bertsum_id"] == "7"
    with pytest.raises(ValueError, match=r"\[E010\] 'skip'"):
        convert(mixed, out, skip=-1)
    result = runner.invoke(app, ["convert", str(mixed), str(out), "--skip", "-1"])
    assert result.exit_code == 2 and "Invalid value for '--skip'" in result.output


def test_custom_fields_and_max_sents(tmp_path):
    row = {"text": ART_1, "summary": [ART_1], "doc": "x"}
    path = write_jsonl(tmp_path / "d.jsonl", [json.dumps(row)])
    out = tmp_path / "out.spacy"
    stats = convert(
        path, out, text_field="text", summary_field="summary", id_field="doc",
        max_oracle_sents=2, show_progress=True,
    )  # fmt: skip
    assert (stats.written, stats.skipped) == (1, 0)
    (doc,) = _read(out)
    assert len(doc.spans[SPANS_KEY]) == 2
    assert doc.user_data["bertsum_id"] == "x"


def test_pipeline_without_sentences_rejected(mixed, tmp_path):
    with pytest.raises(ValueError, match="sentence boundaries"):
        convert(mixed, tmp_path / "out.spacy", nlp_name_or_pipeline=spacy.blank("en"))


def test_bad_on_error(mixed, tmp_path):
    with pytest.raises(ValueError, match=r"\[E054\] on_error must be one of skip, fail, got 'ignore'"):
        convert(mixed, tmp_path / "out.spacy", on_error="ignore")
    with pytest.raises(ValueError, match=r"\[E010\] 'limit'"):
        convert(mixed, tmp_path / "out.spacy", limit=-1)


def test_command_checks_options_and_fails_with_the_coded_error(mixed, tmp_path):
    """Choices and ranges are typer's (exit 2); a malformed line under
    --on-error fail is the library's coded error (exit 1), not a traceback."""
    out = tmp_path / "out.spacy"
    for args, option in ((["--on-error", "ignore"], "--on-error"), (["--limit", "-1"], "--limit")):
        result = runner.invoke(app, ["convert", str(mixed), str(out), *args])
        assert result.exit_code == 2 and f"Invalid value for '{option}'" in result.output, result.output
    result = runner.invoke(app, ["convert", str(mixed), str(out), "--on-error", "fail"])
    assert result.exit_code == 1 and isinstance(result.exception, SystemExit), result.output  # no traceback
    assert "[E074]" in result.output and "line 2: invalid JSON" in " ".join(result.output.split())
    assert not out.exists()
    result = runner.invoke(app, ["convert", str(mixed), str(out), "--limit", "2"])
    assert result.exit_code == 0 and len(_read(out)) == 2


def test_multiprocess_same_result(mixed, tmp_path):
    a = convert(mixed, tmp_path / "a.spacy", show_progress=False)
    b = convert(mixed, tmp_path / "b.spacy", n_process=2, batch_size=1, show_progress=False)
    assert (a.written, a.skipped, a.errors) == (b.written, b.skipped, b.errors)
    da, db = _read(tmp_path / "a.spacy"), _read(tmp_path / "b.spacy")
    assert [d.text for d in da] == [d.text for d in db]
    assert [[s.text for s in d.spans[SPANS_KEY]] for d in da] == [
        [s.text for s in d.spans[SPANS_KEY]] for d in db
    ]
    refs_a = [list(d.user_data[REFERENCE_KEY]) for d in da]
    assert refs_a == [list(d.user_data[REFERENCE_KEY]) for d in db]


@pytest.mark.parametrize("suffix", [".jsonl.gz", ".jsonl.xz"])
def test_convert_corrupt_stream_is_a_line_error(tmp_path, suffix):
    """Data corrupted inside a .gz/.xz stream: the lines before it are
    converted, the first unreadable line is reported (the same reader as
    summarize's)."""
    path = write_jsonl(tmp_path / f"data{suffix}", [json.dumps(GOOD_1)] * 400 + [json.dumps(GOOD_2)] * 400)
    data = bytearray(path.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = bytes(64)
    path.write_bytes(bytes(data))
    stats = convert(path, tmp_path / "out.spacy", show_progress=False)
    # gzip finds the damage only at its CRC: garbage lines come first.
    assert stats.skipped >= 1 and "cannot read the input past this point" in stats.errors[-1]
    assert 0 <= stats.written < 800 and stats.written + stats.skipped <= 800
    with pytest.raises(ValueError, match="line [0-9]+: "):
        convert(path, tmp_path / "out2.spacy", show_progress=False, on_error="fail")
