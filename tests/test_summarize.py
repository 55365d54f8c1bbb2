"""`spacy-bertsum summarize`: the batch command and its library functions."""
import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.language import Language
from typer.testing import CliRunner

import spacy_bertsum
from spacy_bertsum.cli import app
from spacy_bertsum.cli.summarize import (
    Record,
    UsageError,
    iter_records,
    summarize,
    summarize_records,
)

from .util import (
    BAD_AND_GOOD,
    EXPECTED,
    TEXTS,
    assert_same_rows,
    build_nlp,
    jsonl_rows,
    read_rows,
    save_tiny_pipeline,
    write_jsonl,
)

runner = CliRunner()
SHORT = "Short news. It is brief."


@pytest.fixture(scope="module")
def model_dir(tiny_encoder, tmp_path_factory):
    return save_tiny_pipeline(tiny_encoder, tmp_path_factory.mktemp("summarize_model"))


def _invoke(*args, input=None):
    return runner.invoke(app, ["summarize", *[str(a) for a in args]], input=input)


def _last_line(result):
    return result.stderr.strip().splitlines()[-1]


def _message(result):
    """stderr with its line breaks undone (msg.fail wraps long messages)."""
    return " ".join(result.stderr.split())


@pytest.mark.parametrize("suffix", [".jsonl", ".jsonl.gz", ".jsonl.xz"])
def test_rows_ids_order_and_error_rows(model_dir, tmp_path, suffix):
    src = tmp_path / f"in{suffix}"
    write_jsonl(src, BAD_AND_GOOD)
    out = tmp_path / "out.jsonl"
    result = _invoke(src, "--model", model_dir, "--output", out, "--quiet")
    assert result.exit_code == 1, result.output
    rows = read_rows(out)
    assert [row["id"] for row in rows] == [doc_id for doc_id, _ in EXPECTED]
    for row, (doc_id, problem) in zip(rows, EXPECTED):
        if problem is None:
            assert "error" not in row
            assert isinstance(row["summary"], str)
            assert row["summary"] == " ".join(row["summary_sents"])
        else:
            assert row["error"].startswith(problem)
            assert row["summary"] is None
            assert row["summary_sents"] == [] and row["scores"] == []
    by_id = {row["id"]: row for row in rows}
    assert by_id["empty"] == {"id": "empty", "summary": "", "summary_sents": [], "scores": []}
    for doc_id in ("first", 8, "de", "zh"):
        row = by_id[doc_id]
        assert row["summary_sents"] and len(row["scores"]) >= len(row["summary_sents"])
        assert all(isinstance(s, float) and 0.0 <= s <= 1.0 for s in row["scores"])
    assert len(by_id["first"]["scores"]) == 5  # one per sentence
    assert result.stdout == ""
    assert _last_line(result) == f"12 rows, 5 failed -> {out}"


def test_all_good_exits_0_and_writes_stdout(model_dir, tmp_path):
    src = tmp_path / "in.jsonl"
    write_jsonl(src, [json.dumps({"id": i, "text": t}) for i, t in enumerate(TEXTS)])
    result = _invoke(src, "--model", model_dir)  # progress bar on stderr
    assert result.exit_code == 0, result.output
    rows = jsonl_rows(result.stdout)
    assert [row["id"] for row in rows] == [0, 1, 2, 3]
    assert _last_line(result) == "4 rows, 0 failed -> stdout"
    nlp = spacy.load(model_dir)
    for row, text in zip(rows, TEXTS):
        doc = nlp(text)
        assert row["summary"] == doc._.summary
        assert row["scores"] == pytest.approx(doc._.sent_scores, abs=1e-6)


def test_custom_fields_and_renamed_component(tiny_encoder, tmp_path):
    nlp = build_nlp(tiny_encoder)
    nlp.rename_pipe("bertsum", "summarizer")
    nlp.to_disk(tmp_path / "model")
    src = tmp_path / "in.jsonl"
    write_jsonl(src, [json.dumps({"key": "k1", "article": TEXTS[0]})])
    out = tmp_path / "out.jsonl"
    result = _invoke(src, "-m", tmp_path / "model", "-o", out, "--text-field", "article",
                     "--id-field", "key", "--top-k", "1", "-q")
    assert result.exit_code == 0, result.output
    (row,) = read_rows(out)
    assert row["id"] == "k1" and len(row["summary_sents"]) == 1


def test_selection_options(model_dir, tmp_path):
    src = tmp_path / "in.jsonl"
    write_jsonl(src, [json.dumps({"text": t}) for t in TEXTS])
    default = jsonl_rows(_invoke(src, "--model", model_dir, "-q").stdout)
    top1 = jsonl_rows(_invoke(src, "--model", model_dir, "-q", "--top-k", "1").stdout)
    ratio = jsonl_rows(_invoke(src, "--model", model_dir, "-q", "--ratio", "1.0", "--no-trigram-blocking").stdout)
    assert all(len(row["summary_sents"]) == 1 for row in top1)
    assert all(len(row["summary_sents"]) > 1 for row in default)
    assert all(len(row["summary_sents"]) == 5 for row in ratio)
    assert [r["scores"] for r in top1] == [r["scores"] for r in default]
    words = jsonl_rows(_invoke(src, "--model", model_dir, "-q", "--max-words", "3").stdout)
    assert all(row["summary_sents"] == [] for row in words)  # every sentence is longer
    bad = _invoke(src, "--model", model_dir, "-q", "--ratio", "2")
    assert bad.exit_code == 2 and "[E011] 'ratio' must be in (0, 1]" in _message(bad)


def test_int8_encoder(model_dir, tmp_path):
    src = tmp_path / "in.jsonl"
    write_jsonl(src, [json.dumps({"id": i, "text": t}) for i, t in enumerate(TEXTS)] + ["{not json"])
    out = tmp_path / "out.jsonl"
    result = _invoke(src, "--model", model_dir, "-o", out, "-q", "--int8")
    assert result.exit_code == 1, result.output  # the bad line only
    assert _last_line(result) == f"5 rows, 1 failed -> {out}"
    rows = read_rows(out)
    assert [row["id"] for row in rows] == [0, 1, 2, 3, 5]
    assert rows[-1]["error"].startswith("line 5: invalid JSON")
    float_rows = jsonl_rows(_invoke(src, "--model", model_dir, "-q").stdout)
    for row, float_row in zip(rows[:4], float_rows):
        assert "error" not in row and len(row["summary_sents"]) == 3
        assert row["summary"] == " ".join(row["summary_sents"])
        assert len(row["scores"]) == len(float_row["scores"]) == 5
        # int8 moves the tiny model's scores by < 1e-4 (see test_quantize.py)
        assert row["scores"] == pytest.approx(float_row["scores"], abs=0.01)
    gpu = _invoke(src, "--model", model_dir, "-q", "--int8", "--gpu-id", "0")
    assert gpu.exit_code == 2 and "[E038]" in gpu.stderr and "CPU only" in _message(gpu)


def test_txt_directory_and_glob(model_dir, tmp_path):
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "b.txt").write_text(TEXTS[1], encoding="utf8")
    (docs / "a.txt").write_text(TEXTS[0], encoding="utf8")
    (docs / "c.txt").write_text("", encoding="utf8")
    (docs / "notes.md").write_text(TEXTS[2], encoding="utf8")
    garbage = random.Random(0).randbytes(3000)
    (docs / "d.txt").write_bytes(garbage)
    out = tmp_path / "out.jsonl"
    result = _invoke(docs, "--model", model_dir, "-o", out, "-q")
    assert result.exit_code == 1, result.output  # d.txt is not text
    rows = read_rows(out)
    assert [row["id"] for row in rows] == ["a.txt", "b.txt", "c.txt", "d.txt"]
    assert rows[2]["summary"] == ""
    assert "not UTF-8" in rows[3]["error"]  # binary garbage: an error row, not a summary
    result = _invoke(str(docs / "[ab].txt"), "--model", model_dir, "-q")
    assert [row["id"] for row in jsonl_rows(result.stdout)] == ["a.txt", "b.txt"]
    assert jsonl_rows(result.stdout)[0]["summary"] == rows[0]["summary"]


def test_stdin_jsonl_and_txt(model_dir):
    lines = [json.dumps({"id": "x", "text": TEXTS[0]}), "", "oops", json.dumps({"text": TEXTS[1]})]
    result = _invoke("-", "--model", model_dir, "-q", input="\n".join(lines) + "\n")
    assert result.exit_code == 1
    rows = jsonl_rows(result.stdout)
    assert [row["id"] for row in rows] == ["x", 3, 4]
    assert rows[1]["error"].startswith("line 3: invalid JSON")
    result = _invoke("-", "--model", model_dir, "-q", "--stdin-format", "txt",
                     input=f"{TEXTS[0]}\n\n{TEXTS[1]}\n")
    assert result.exit_code == 0, result.output
    rows = jsonl_rows(result.stdout)
    assert [row["id"] for row in rows] == [1, 2, 3]  # every line is a document
    assert rows[1]["summary"] == "" and rows[0]["summary"] and rows[2]["summary"]


@pytest.mark.slow
def test_stdin_through_python_m(model_dir):
    lines = [json.dumps({"id": i, "text": t}) for i, t in enumerate(TEXTS[:2])]
    proc = subprocess.run(
        [sys.executable, "-m", "spacy_bertsum", "summarize", "-", "--model", str(model_dir)],
        input=("\n".join(lines) + "\n").encode("utf8"), capture_output=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr.decode()
    assert [row["id"] for row in jsonl_rows(proc.stdout.decode("utf8"))] == [0, 1]
    assert proc.stderr.decode().strip().splitlines()[-1] == "2 rows, 0 failed -> stdout"


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX signals, /proc")
@pytest.mark.parametrize("sig", ["SIGINT", "SIGTERM"])
def test_signal_stops_workers_and_resume_completes(model_dir, tmp_path, sig):
    """With --n-process 2, SIGINT (to the process group, as Ctrl-C sends it)
    and SIGTERM (to the parent, as `kill` sends it) stop the parent and its
    workers within seconds, leaving complete rows; --resume finishes the run."""
    import signal
    import time

    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    write_jsonl(src, [json.dumps({"id": i, "text": " ".join(TEXTS * 3)}) for i in range(3000)])
    cmd = [sys.executable, "-m", "spacy_bertsum", "summarize", str(src), "-o", str(out), "--model", str(model_dir),
           "--n-process", "2", "--batch-size", "4", "-q"]
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE, start_new_session=True)
    deadline = time.time() + 120
    while (not out.exists() or out.stat().st_size < 20_000) and time.time() < deadline:
        time.sleep(0.2)
    assert proc.poll() is None, "the run ended before it could be interrupted"
    workers = _children(proc.pid)
    assert len(workers) == 2
    if sig == "SIGINT":
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, signal.SIGTERM)
    _, stderr = proc.communicate(timeout=20)
    assert proc.returncode == 130, stderr.decode()
    assert b"--resume" in stderr and b"Traceback" not in stderr
    time.sleep(1)
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists() and _state(pid) != "Z"]
    data = out.read_bytes()
    assert data.endswith(b"\n") and 0 < len(data.splitlines()) < 3000
    done = subprocess.run(cmd + ["--resume"], capture_output=True, timeout=600)
    assert done.returncode == 0, done.stderr.decode()
    assert [row["id"] for row in read_rows(out)] == list(range(3000))


def _children(pid: int):
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        children = (task / "children").read_text().split()
        found.extend(int(c) for c in children)
    return found


def _state(pid: int) -> str:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]


@pytest.mark.slow
def test_console_script_help():
    script = Path(sys.executable).parent / ("spacy-bertsum" + (".exe" if os.name == "nt" else ""))
    proc = subprocess.run([str(script), "--help"], capture_output=True, timeout=120)
    assert proc.returncode == 0
    assert "summarize" in proc.stdout.decode()
    result = runner.invoke(app, ["summarize", "--help"])
    assert result.exit_code == 0
    for option in ("--output", "--model", "--top-k", "--resume", "--max-chars", "--stdin-format"):
        assert option in result.output


def test_resume_after_interruption(model_dir, tmp_path):
    texts = [TEXTS[i % 4] for i in range(9)]
    lines = [json.dumps({"id": f"d{i}", "text": t}) for i, t in enumerate(texts)]
    lines.insert(4, "not json")
    src = tmp_path / "in.jsonl"
    write_jsonl(src, lines)
    full = tmp_path / "full.jsonl"
    first = _invoke(src, "--model", model_dir, "-o", full, "-q", "--batch-size", "3")
    assert first.exit_code == 1
    expected = full.read_bytes()
    assert len(expected.splitlines()) == 10
    for k in (0, 3, 6, 10):
        partial = tmp_path / f"partial{k}.jsonl"
        head = b"".join(expected.splitlines(keepends=True)[:k])
        rest = expected[len(head):]
        partial.write_bytes(head + rest[: len(rest.split(b"\n")[0]) // 2])  # half a line
        result = _invoke(src, "--model", model_dir, "-o", partial, "-q", "--batch-size", "3", "--resume")
        assert result.exit_code == 1, result.output
        _assert_same_rows(partial.read_bytes(), expected)
        kept = f" ({k} kept from the existing output)" if k else ""
        assert _last_line(result) == f"10 rows, 1 failed{kept} -> {partial}"
    # without --resume an existing file is overwritten
    result = _invoke(src, "--model", model_dir, "-o", partial, "-q", "--batch-size", "3")
    assert result.exit_code == 1
    assert partial.read_bytes() == expected


def test_long_document_and_max_chars(model_dir, tmp_path):
    long_text = " ".join(TEXTS * 152)  # about 20k words, 3040 sentences
    assert len(long_text.split()) > 20_000
    src = tmp_path / "in.jsonl"
    write_jsonl(src, [json.dumps({"id": "long", "text": long_text}), json.dumps({"id": "short", "text": SHORT})])
    result = _invoke(src, "--model", model_dir, "-q")
    assert result.exit_code == 0, result.output
    long_row, short_row = jsonl_rows(result.stdout)
    assert len(long_row["scores"]) == 152 * 20
    assert 1 <= len(long_row["summary_sents"]) <= 3
    result = _invoke(src, "--model", model_dir, "-q", "--max-chars", "1000")
    assert result.exit_code == 1
    long_row, short_row = jsonl_rows(result.stdout)
    assert long_row["error"] == f"line 1: text has {len(long_text)} characters, more than the limit of 1000 (--max-chars)"
    assert short_row["summary"] and "error" not in short_row
    assert _last_line(result) == "2 rows, 1 failed -> stdout"


def test_max_chars_raises_nlp_max_length(tiny_encoder, tmp_path):
    nlp = build_nlp(tiny_encoder)
    nlp.max_length = 500  # spaCy would refuse the doc below
    text = " ".join(TEXTS * 3)
    src = tmp_path / "in.jsonl"
    write_jsonl(src, [json.dumps({"text": text})])
    out = tmp_path / "out.jsonl"
    stats = summarize(src, out, model=nlp, show_progress=False)
    assert (stats.rows, stats.failed) == (1, 0)
    assert nlp.max_length == 5_000_000
    assert len(read_rows(out)[0]["scores"]) == 60


def test_usage_errors(model_dir, tmp_path, monkeypatch):
    result = _invoke(tmp_path / "missing.jsonl", "--model", model_dir)
    assert result.exit_code == 2 and f"[E050] The input {tmp_path / 'missing.jsonl'} does not exist" in _message(result)
    src = tmp_path / "in.jsonl"
    write_jsonl(src, [json.dumps({"text": SHORT})])
    result = _invoke(src, "--model", tmp_path / "no-such-model")
    assert result.exit_code == 2 and "[E055] Cannot load the pipeline" in _message(result)
    # No --model and no shipped pipeline (an install without package data).
    monkeypatch.setattr(spacy_bertsum.loading, "PIPELINES_DIR", tmp_path / "no-pipelines")
    result = _invoke(src)
    assert result.exit_code == 2 and "Cannot load the pipeline 'en_bertsum_news'" in _message(result)
    assert "[E020]" in result.stderr
    result = _invoke(tmp_path / "*.nothing", "--model", model_dir)
    assert result.exit_code == 2 and "[E052] No .txt files match" in _message(result)
    result = _invoke(src, "--model", model_dir, "--output", tmp_path)
    assert result.exit_code == 2 and f"[E057] --output {tmp_path} is a directory" in _message(result)
    result = _invoke("-", "--model", model_dir, "--resume", input="")
    assert result.exit_code == 2 and "[E056] --resume needs --output PATH" in _message(result)
    # typer's own checks of choices and ranges: exit code 2 as well
    result = _invoke("-", "--model", model_dir, "--stdin-format", "csv", input="")
    assert result.exit_code == 2 and "Invalid value for '--stdin-format'" in _message(result)
    result = _invoke(src, "--model", model_dir, "--top-k", "-1")
    assert result.exit_code == 2 and "Invalid value for '--top-k'" in _message(result)
    assert _invoke().exit_code == 2  # missing argument
    no_bertsum = spacy.blank("en")
    no_bertsum.add_pipe("sentencizer")
    no_bertsum.to_disk(tmp_path / "plain")
    result = _invoke(src, "--model", tmp_path / "plain")
    assert result.exit_code == 2 and "[E037] The pipeline has no bertsum component" in _message(result)


def test_shipped_model_is_the_default(model_dir, tmp_path, monkeypatch):
    # A stand-in for the shipped pipeline, to stay quick (the real one is
    # tested in test_shipped.py).
    shipped = tmp_path / "pipelines"
    shipped.mkdir()
    (shipped / "en_bertsum_news").symlink_to(model_dir)
    monkeypatch.setattr(spacy_bertsum.loading, "PIPELINES_DIR", shipped)
    src = tmp_path / "in.jsonl"
    write_jsonl(src, [json.dumps({"text": SHORT})])
    result = _invoke(src, "-q")
    assert result.exit_code == 0, result.output
    assert jsonl_rows(result.stdout)[0]["summary"]


@Language.component("test_summarize_boom")
def _boom(doc):
    if "Explode" in doc.text:
        raise RuntimeError("boom on purpose")
    return doc


def test_failing_doc_only_fails_itself(tiny_encoder):
    nlp = build_nlp(tiny_encoder)
    clean = [nlp(t)._.summary for t in TEXTS]
    nlp.add_pipe("test_summarize_boom")
    texts = [TEXTS[i % 4] for i in range(7)]
    texts[2] = "Explode here. " + TEXTS[0]
    records = [Record(i, f"line {i + 1}", text=t) for i, t in enumerate(texts)]
    records.insert(5, Record("pre", "line x", row={"id": "pre", "summary": "", "summary_sents": [], "scores": []}))
    for batch_size in (1, 3, 32):
        rows = list(summarize_records(nlp, records, batch_size=batch_size))
        assert [row["id"] for row in rows] == [0, 1, 2, 3, 4, "pre", 5, 6]
        assert rows[2]["error"] == "line 3: summarization failed (RuntimeError: boom on purpose)"
        good = [row for row in rows if row["id"] not in (2, "pre")]
        assert [row["summary"] for row in good] == [clean[i % 4] for i in (0, 1, 3, 4, 5, 6)]


def test_iter_records_skip_and_stdin_bytes(tmp_path):
    import io

    stream = io.BytesIO(b'{"text": "A."}\n\n{"text": "B."}\n{"text": "C."}\n')
    records = list(iter_records("-", stdin=stream, skip=1))
    assert [(r.id, r.text) for r in records] == [(3, "B."), (4, "C.")]
    with pytest.raises(UsageError, match=r"\[E054\] stdin_format must be one of jsonl, txt, got 'csv'"):
        list(iter_records("-", stdin=io.BytesIO(b""), stdin_format="csv"))


def test_resume_skips_the_rows_written(tiny_encoder, tmp_path):
    """A resumed run keeps the complete rows, skips as many input rows and
    gives the rest as an uninterrupted run does, failures included (scores
    equal up to float rounding: batches are cut differently)."""
    nlp = build_nlp(tiny_encoder)
    nlp.add_pipe("test_summarize_boom")
    texts = [TEXTS[i % 4] for i in range(11)]
    texts[4] = "Explode here. " + TEXTS[1]
    lines = [json.dumps({"id": i, "text": t}) for i, t in enumerate(texts)]
    lines[6:6] = ["", "[]", json.dumps({"id": "e", "text": ""})]
    src = tmp_path / "in.jsonl"
    write_jsonl(src, lines)
    full = tmp_path / "full.jsonl"
    stats = summarize(src, full, model=nlp, batch_size=3, show_progress=False)
    assert (stats.rows, stats.failed) == (13, 2)
    expected = full.read_bytes()
    complete = expected.splitlines(keepends=True)
    for k in range(1, 13):
        partial = tmp_path / "partial.jsonl"
        partial.write_bytes(b"".join(complete[:k]) + complete[k][:7])
        stats = summarize(src, partial, model=nlp, batch_size=3, resume=True, show_progress=False)
        assert (stats.rows, stats.failed, stats.resumed) == (13, 2, k)
        _assert_same_rows(partial.read_bytes(), expected)


def _assert_same_rows(got: bytes, expected: bytes) -> None:
    assert got.endswith(b"\n")
    assert_same_rows(jsonl_rows(got.decode("utf8")), jsonl_rows(expected.decode("utf8")))


def test_html_view_of_the_batch_is_capped_with_a_note(model_dir, tmp_path):
    inp = tmp_path / "in.jsonl"
    write_jsonl(inp, [json.dumps({"id": i, "text": text}) for i, text in enumerate(TEXTS)])
    out, html = tmp_path / "out.jsonl", tmp_path / "view.html"
    result = _invoke(inp, "--model", model_dir, "--output", out, "--html", html, "--html-max-docs", 2, "--quiet")
    assert result.exit_code == 0, result.output
    markup = html.read_text(encoding="utf8")
    assert markup.startswith("<!DOCTYPE html>")
    assert f"Showing 2 of {len(TEXTS)} documents" in markup
    rows = read_rows(out)
    n_selected = sum(len(row["summary_sents"]) for row in rows[:2])
    assert markup.count("bertsum-selected") == n_selected


def test_output_that_is_an_input_is_refused(model_dir, tmp_path):
    src = tmp_path / "in.jsonl"
    write_jsonl(src, [json.dumps({"text": SHORT})])
    before = src.read_bytes()
    link = tmp_path / "link.jsonl"
    link.symlink_to(src)
    for args in (["--output", src], ["--output", link], ["--resume", "--output", src], ["--html", src]):
        result = _invoke(src, "--model", model_dir, *args)
        assert result.exit_code == 2, args
        assert "[E058]" in result.stderr and "is an input file" in _message(result)
        assert src.read_bytes() == before
    txt = tmp_path / "docs"
    txt.mkdir()
    (txt / "a.txt").write_text(SHORT, encoding="utf8")
    result = _invoke(txt, "--model", model_dir, "--output", txt / "a.txt")
    assert result.exit_code == 2 and (txt / "a.txt").read_text(encoding="utf8") == SHORT


def test_non_finite_scores_are_error_rows_never_nan(model_dir, tmp_path):
    """Damaged weights that give NaN scores: a clear error (E031), caught by
    the CLI's check before the first row; never NaN in the output, never a
    silent Lead-3 summary."""
    import torch

    nlp = spacy.load(model_dir)
    head = nlp.get_pipe("bertsum").model.layers[1].shims[0]._model
    with torch.no_grad():
        head.output.bias.fill_(float("nan"))
    with pytest.raises(ValueError, match=r"\[E031\]"):
        nlp(SHORT)
    nlp.to_disk(tmp_path / "nan_model")
    src = tmp_path / "in.jsonl"
    write_jsonl(src, [json.dumps({"text": SHORT}), json.dumps({"text": SHORT})])
    result = _invoke(src, "--model", tmp_path / "nan_model", "--output", tmp_path / "out.jsonl")
    text = (tmp_path / "out.jsonl").read_text(encoding="utf8") if (tmp_path / "out.jsonl").exists() else ""
    assert "NaN" not in text and "NaN" not in result.stdout
    assert result.exit_code == 2 and "[E031]" in result.stderr


def test_second_writer_on_the_same_output_is_refused(model_dir, tmp_path):
    import fcntl

    src = tmp_path / "in.jsonl"
    write_jsonl(src, [json.dumps({"text": SHORT})])
    out = tmp_path / "out.jsonl"
    out.write_bytes(b'{"id": 1, "partial": true}\n')
    with out.open("ab") as first_run:  # another run holds the output
        fcntl.flock(first_run.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        result = _invoke(src, "--model", model_dir, "--output", out)
        assert result.exit_code == 2 and "another run is writing" in _message(result)
        assert out.read_bytes() == b'{"id": 1, "partial": true}\n'
    result = _invoke(src, "--model", model_dir, "--output", out)
    assert result.exit_code == 0 and len(read_rows(out)) == 1


def test_corrupt_gzip_stream_ends_in_an_error_row(model_dir, tmp_path):
    """Data damaged inside a .gz stream (zlib.error, not an OSError): the rows
    before it, then one error row naming the line, the summary line, exit 1."""
    import gzip

    rows = [json.dumps({"id": i, "text": f"{SHORT} Row {i} has its own words {'x' * (i % 7)}."}) for i in range(200)]
    src = tmp_path / "in.jsonl.gz"
    src.write_bytes(gzip.compress(("\n".join(rows) + "\n").encode("utf8")))
    data = bytearray(src.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 16] = b"\xff" * 16  # an invalid deflate block: zlib.error
    src.write_bytes(bytes(data))
    out = tmp_path / "out.jsonl"
    result = _invoke(src, "--model", model_dir, "--output", out)
    assert result.exit_code == 1, result.output
    written = read_rows(out)
    # The damaged block may first decompress to garbage lines (invalid JSON
    # rows) before zlib gives up.
    assert "cannot read the input" in written[-1]["error"] and "decompressing" in written[-1]["error"]
    assert written[0].get("error") is None and written[0]["summary"]
    assert [row["id"] for row in written[:50]] == list(range(50))
    assert result.stderr.strip().splitlines()[-1].endswith(f"-> {out}")


def test_cr_only_line_endings_are_line_breaks(model_dir, tmp_path):
    src = tmp_path / "in.jsonl"
    lines = [json.dumps({"id": i, "text": SHORT}) for i in range(3)]
    src.write_bytes(("\r".join(lines) + "\r").encode("utf8"))
    result = _invoke(src, "--model", model_dir, "--output", tmp_path / "out.jsonl")
    assert result.exit_code == 0, result.output
    assert [row["id"] for row in read_rows(tmp_path / "out.jsonl")] == [0, 1, 2]
    src.write_bytes(("\r\n".join(lines) + "\r\n").encode("utf8"))
    result = _invoke(src, "--model", model_dir, "--output", tmp_path / "out2.jsonl")
    assert [row["id"] for row in read_rows(tmp_path / "out2.jsonl")] == [0, 1, 2]


def test_txt_inputs_not_utf8_and_broken_links_get_error_rows(model_dir, tmp_path):
    folder = tmp_path / "docs"
    folder.mkdir()
    (folder / "a.txt").write_text(SHORT, encoding="utf8")
    (folder / "b.txt").write_bytes("Caf\u00e9 news in Latin-1. It is not UTF-8.".encode("latin1"))
    (folder / "c.txt").symlink_to(tmp_path / "gone.txt")
    (folder / "d.bin.txt").write_bytes(bytes(range(256)))
    result = _invoke(folder, "--model", model_dir, "--output", tmp_path / "out.jsonl")
    assert result.exit_code == 1, result.output
    rows = {row["id"]: row for row in read_rows(tmp_path / "out.jsonl")}
    assert list(rows) == ["a.txt", "b.txt", "c.txt", "d.bin.txt"]
    assert rows["a.txt"].get("error") is None and rows["a.txt"]["summary"]
    assert "not UTF-8" in rows["b.txt"]["error"] and "not UTF-8" in rows["d.bin.txt"]["error"]
    assert "cannot read the file" in rows["c.txt"]["error"]
