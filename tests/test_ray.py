"""`summarize --engine ray` and `spacy_bertsum.ray`: the local engine's rows,
on a real Ray cluster that the tests start (127.0.0.1 only, 2 CPUs, no
dashboard). Ray is an extra: without it these tests skip, except the one
that checks what happens without it."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import spacy
from spacy.language import Language
from typer.testing import CliRunner

from spacy_bertsum.cli import app
from spacy_bertsum.cli.summarize import UsageError, summarize

from .util import BAD_AND_GOOD, EXPECTED, TEXTS, assert_same_rows, read_rows, save_tiny_pipeline, write_jsonl

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()


# -- a component for the fault tests (registered in every Ray worker by the hook) --


@Language.factory("test_ray_faults", default_config={"marker": "", "seen": ""})
def _make_faults(nlp, name, marker: str, seen: str):
    """On a doc with "Kill": SIGKILL this process, once (``marker`` records
    the pid). On "Explode": raise. Every doc with "zebra": append the pid to
    ``seen``."""

    def faults(doc):
        if seen and "zebra" in doc.text:
            with open(seen, "a", encoding="utf8") as f:
                f.write(f"{os.getpid()}\n")
        if "Explode" in doc.text:
            raise RuntimeError("boom on purpose")
        if "Kill" in doc.text:
            try:
                fd = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:
                return doc
            os.write(fd, str(os.getpid()).encode())
            os.close(fd)
            os.kill(os.getpid(), signal.SIGKILL)
        return doc

    return faults


def register_components() -> None:
    """worker_process_setup_hook: importing this module registers the factory."""


# -- fixtures and helpers ----------------------------------------------------------


@pytest.fixture(scope="module")
def cluster():
    pytest.importorskip("ray")
    import spacy_bertsum.ray as sbr

    env = {"env_vars": {"PYTHONPATH": str(ROOT)}, "worker_process_setup_hook": f"{__name__}.register_components"}
    with sbr.cluster(num_cpus=2, quiet=True, runtime_env=env) as info:
        yield info


@pytest.fixture(scope="module")
def model_dir(tiny_encoder, tmp_path_factory):
    return save_tiny_pipeline(tiny_encoder, tmp_path_factory.mktemp("ray_model"))


def _local(src, out, model, **kwargs):
    stats = summarize(src, out, model=model, show_progress=False, **kwargs)
    return stats, read_rows(out)


def _ray(src, out, model, **kwargs):
    from spacy_bertsum.cli._ray_engine import summarize_ray

    kwargs.setdefault("workers", 2)
    stats = summarize_ray(src, out, model=model, show_progress=False, **kwargs)
    return stats, read_rows(out) if Path(out).suffix == ".jsonl" else None


# -- without a cluster -------------------------------------------------------------


def test_without_ray_the_package_imports_and_the_engine_says_what_to_install(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    monkeypatch.delitem(sys.modules, "spacy_bertsum.ray", raising=False)
    import spacy_bertsum.cli.summarize  # noqa: F401

    with pytest.raises(ImportError, match=r"\[E060\].*spacy-bertsum\[ray\]"):
        import spacy_bertsum.ray  # noqa: F401
    src = tmp_path / "in.jsonl"
    write_jsonl(src, [json.dumps({"text": TEXTS[0]})])
    result = runner.invoke(app, ["summarize", str(src), "-o", str(tmp_path / "o.jsonl"), "--engine", "ray"])
    assert result.exit_code == 2 and "[E060]" in result.stderr


def test_engine_options_are_checked_before_anything_runs(model_dir, tmp_path):
    src = tmp_path / "in.jsonl"
    write_jsonl(src, [json.dumps({"text": TEXTS[0]})])
    out = tmp_path / "out.jsonl"
    base = ["summarize", str(src), "-o", str(out), "--model", str(model_dir)]
    for extra, message in [
        (["--engine", "spark"], "Invalid value for '--engine'"),  # typer's check of the choice
        (["--workers", "2"], "[E065] --address/--workers is not available with --engine local: use --n-process"),
        (["--address", "127.0.0.1:1"], "[E065]"),
        (["--engine", "ray", "--n-process", "2"], "[E065] --n-process is not available with --engine ray"),
        (["--engine", "ray", "--html", str(tmp_path / "v.html")], "[E065] --html"),
        (["--engine", "ray", "--workers", "0"], "--workers"),
    ]:
        out.write_text('{"id": 1}\n', encoding="utf8")
        result = runner.invoke(app, base + extra)
        assert result.exit_code == 2, (extra, result.output)
        assert message in " ".join(result.stderr.split()), (extra, result.stderr)  # msg.fail wraps lines
    assert not Path(f"{out}.parts").exists()


def test_resume_refuses_a_work_directory_of_other_settings(model_dir, tmp_path):
    pytest.importorskip("ray")
    from spacy_bertsum.cli._ray_engine import _prepare_parts, summarize_ray

    src = tmp_path / "in.jsonl"
    write_jsonl(src, [json.dumps({"text": t}) for t in TEXTS])
    out = tmp_path / "out.jsonl"
    settings = {"input": None, "model": str(model_dir), "text_field": "text", "id_field": "id",
                "stdin_format": "jsonl", "selection": {}, "max_chars": 5_000_000, "int8": False, "shard_rows": 4}
    out.write_text('{"id": 1}\n', encoding="utf8")
    with pytest.raises(UsageError, match=r"\[E067\]"):  # an output, but no work directory
        summarize_ray(src, out, model=model_dir, resume=True, show_progress=False)
    _prepare_parts(Path(f"{out}.parts"), settings, resume=False, out_path=out)
    with pytest.raises(UsageError, match=r"\[E064\].*input, selection"):
        summarize_ray(src, out, model=model_dir, resume=True, selection={"top_k": 1}, show_progress=False)
    assert (Path(f"{out}.parts") / "run.json").exists()  # kept for a resume with the right settings


# -- on the cluster ------------------------------------------------------------------


@pytest.mark.slow
def test_cluster_is_local_loopback_without_dashboard(cluster):
    import ray

    assert cluster["address"].startswith("127.0.0.1:")
    assert cluster["node_ip_address"] == "127.0.0.1"
    assert cluster.get("webui_url") in (None, "")
    assert ray.cluster_resources()["CPU"] == 2


@pytest.mark.slow
def test_same_rows_as_the_local_engine_in_input_order(cluster, model_dir, tmp_path, monkeypatch):
    """Bad and good rows, three times over (36 rows): the rows of the local
    engine, in input order, one per input row, across several shards and
    waves (a wave is one Ray Data run with its own actors)."""
    from spacy_bertsum.cli import _ray_engine

    monkeypatch.setattr(_ray_engine, "SHARD_BATCHES", 2)  # shards of 4 rows: 9 shards
    monkeypatch.setattr(_ray_engine, "MIN_WAVE_SHARDS", 5)  # 2 waves
    monkeypatch.setattr(_ray_engine, "WAVE_SHARDS_PER_WORKER", 1)
    waves = []
    run_wave = _ray_engine._Run._run_wave
    monkeypatch.setattr(_ray_engine._Run, "_run_wave",
                        lambda self, wave: (waves.append([k for k, _ in wave]), run_wave(self, wave))[1])
    src = tmp_path / "in.jsonl"
    write_jsonl(src, BAD_AND_GOOD * 3)
    local_stats, expected = _local(src, tmp_path / "local.jsonl", model_dir, batch_size=2)
    out = tmp_path / "ray.jsonl"
    result = runner.invoke(app, ["summarize", str(src), "-o", str(out), "--model", str(model_dir), "--engine", "ray",
                                 "--workers", "2", "--batch-size", "2", "-q"])
    assert result.exit_code == 1, result.output  # the bad rows
    assert result.stderr.strip().splitlines()[-1] == f"36 rows, 15 failed -> {out}"
    rows = read_rows(out)
    assert_same_rows(rows, expected)  # ids, error messages with their line numbers, summaries
    assert [row["id"] for row in rows[:12]] == [doc_id for doc_id, _ in EXPECTED]
    assert rows[13]["error"].startswith("line 15: invalid JSON")  # the second copy's line 2
    assert (local_stats.rows, local_stats.failed) == (36, 15)
    assert waves == [[0, 1, 2, 3, 4], [5, 6, 7, 8]]
    assert not Path(f"{out}.parts").exists()


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="/proc")
def test_console_command_starts_and_stops_a_cluster_of_its_own(cluster, model_dir, tmp_path):
    """`spacy-bertsum summarize IN --output OUT --engine ray --workers 2` in a
    fresh process: the local engine's rows, and no Ray process of its own left."""
    src = tmp_path / "in.jsonl"
    write_jsonl(src, BAD_AND_GOOD)
    _, expected = _local(src, tmp_path / "local.jsonl", model_dir)
    before = _ray_servers()
    script = Path(sys.executable).parent / "spacy-bertsum"
    proc = subprocess.run([str(script), "summarize", str(src), "--output", str(tmp_path / "ray.jsonl"), "--model",
                           str(model_dir), "--engine", "ray", "--workers", "2", "-q"], capture_output=True, timeout=300)
    assert proc.returncode == 1, proc.stderr.decode()[-3000:]  # the bad rows
    assert proc.stderr.decode().strip().splitlines()[-1] == f"12 rows, 5 failed -> {tmp_path / 'ray.jsonl'}"
    assert_same_rows(read_rows(tmp_path / "ray.jsonl"), expected)
    deadline = time.time() + 30
    while _ray_servers() - before and time.time() < deadline:
        time.sleep(0.5)
    assert not _ray_servers() - before


def _ray_servers():
    """Pids of Ray's per-cluster processes (GCS, raylet, the node's agents) on
    this machine (names as /proc has them, cut to 15 characters)."""
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            name = stat.read_text().split("(", 1)[1].split(")", 1)[0]
        except (OSError, IndexError):
            continue
        if name in ("gcs_server", "raylet") or name.startswith(("ray::DashboardA", "ray::RuntimeEnv")):
            found.add(int(stat.parent.name))
    return found


@pytest.mark.slow
def test_parquet_in_and_out(cluster, model_dir, tmp_path):
    """A directory of Parquet files in, a Parquet file out: rows numbered
    across the files as lines are, in input order, the rows of the local
    engine on the same rows as JSONL."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [{"id": f"p{i}", "text": TEXTS[i % 4]} for i in range(7)]
    rows[2]["text"] = None
    rows[3]["id"] = None
    rows[5]["text"] = "   "
    (tmp_path / "in").mkdir()
    pq.write_table(pa.Table.from_pylist(rows[:4]), tmp_path / "in" / "part-0.parquet")
    pq.write_table(pa.Table.from_pylist(rows[4:]), tmp_path / "in" / "part-1.parquet")
    src = tmp_path / "same.jsonl"
    write_jsonl(src, [json.dumps(row) for row in rows])
    _, expected = _local(src, tmp_path / "local.jsonl", model_dir)
    assert expected[2]["error"] == "line 3: field 'text' must be a string, got NoneType"
    assert expected[3]["id"] == 4
    stats, _ = _ray(tmp_path / "in", tmp_path / "ray.parquet", model_dir)
    assert (stats.rows, stats.failed) == (7, 1)
    table = pq.read_table(tmp_path / "ray.parquet")
    assert table.column_names == ["id", "summary", "summary_sents", "scores", "error"]
    assert table.column("id").to_pylist() == ["p0", "p1", "p2", "4", "p4", "p5", "p6"]  # ids as strings
    got = [{k: v for k, v in row.items() if v is not None} for row in table.to_pylist()]
    for row, want in zip(got, expected):
        row["id"] = want["id"]
        row.setdefault("summary", None)  # an error row's null summary
    assert_same_rows(got, expected)


@pytest.mark.slow
def test_summarize_dataset(cluster, model_dir):
    import ray

    import spacy_bertsum.ray as sbr

    items = [{"id": f"d{i}", "text": TEXTS[i % 4]} for i in range(6)]
    items[1]["text"] = None
    items[4]["text"] = ""
    ds = ray.data.from_items(items, override_num_blocks=3)
    out = sbr.summarize_dataset(ds, model=model_dir, workers=2, batch_size=2, top_k=2).take_all()
    assert [list(row) for row in out] == [list(sbr.OUTPUT_COLUMNS)] * 6
    by_id = {row["id"]: row for row in out}
    assert sorted(by_id) == [item["id"] for item in items]
    assert by_id["d1"]["error"] == "id='d1': field 'text' must be a string, got NoneType"
    assert by_id["d1"]["summary"] is None and list(by_id["d1"]["summary_sents"]) == []
    assert by_id["d4"]["summary"] == "" and by_id["d4"]["error"] is None
    nlp = spacy.load(model_dir)
    for item in items:
        if item["text"]:
            doc = nlp(item["text"], component_cfg={"bertsum": {"top_k": 2}})
            row = by_id[item["id"]]
            assert row["summary"] == doc._.summary
            assert list(row["summary_sents"]) == [s.text for s in doc._.summary_sents]
            assert list(row["scores"]) == pytest.approx(doc._.sent_scores, abs=1e-6)
    with pytest.raises(TypeError, match=r"\[E061\]"):
        sbr.summarize_dataset(ds, model=nlp)
    with pytest.raises(ValueError, match=r"\[E062\]"):
        sbr.summarize_dataset(ds.rename_columns({"text": "body"}), model=model_dir)
    with pytest.raises(ValueError, match=r"\[E011\]"):
        sbr.summarize_dataset(ds, model=model_dir, ratio=2.0)


@pytest.mark.slow
def test_a_killed_actor_is_restarted_and_nothing_is_lost(cluster, model_dir, tmp_path):
    """One worker, SIGKILLed in the middle of a batch in the middle of the run:
    Ray restarts it (a new process) and runs its batches again; the output
    has every row once, the rows of the local engine. A doc on which the
    pipeline raises is an error row there too."""
    nlp = spacy.load(model_dir)
    nlp.add_pipe("test_ray_faults", before="bertsum",
                 config={"marker": str(tmp_path / "killed"), "seen": str(tmp_path / "seen")})
    nlp.to_disk(tmp_path / "faulty")
    texts = [f"{TEXTS[i % 4]} A zebra {i}." for i in range(24)]
    texts[13] = "Kill the actor now. " + texts[13]
    texts[17] = "Explode here. " + texts[17]
    src = tmp_path / "in.jsonl"
    write_jsonl(src, [json.dumps({"id": i, "text": t}) for i, t in enumerate(texts)])
    stats, rows = _ray(src, tmp_path / "ray.jsonl", tmp_path / "faulty", workers=1, batch_size=2, shard_rows=4)

    killed = int((tmp_path / "killed").read_text())
    seen = [int(pid) for pid in (tmp_path / "seen").read_text().split()]
    assert seen.count(killed) >= 2  # it had summarized rows before it was killed
    assert len([pid for pid in seen if pid != killed]) >= 10 and seen[-1] != killed  # restarted: a new process
    assert [row["id"] for row in rows] == list(range(24))
    assert rows[17]["error"] == "line 18: summarization failed (RuntimeError: boom on purpose)"
    assert (stats.rows, stats.failed) == (24, 1)
    clean = texts[:]
    clean[17] = texts[16]  # stand-in: the local comparison has no failing component
    write_jsonl(tmp_path / "clean.jsonl", [json.dumps({"id": i, "text": t}) for i, t in enumerate(clean)])
    _, expected = _local(tmp_path / "clean.jsonl", tmp_path / "local.jsonl", model_dir)
    assert_same_rows(rows[:17] + rows[18:], expected[:17] + expected[18:])


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="POSIX signals")
def test_stopped_run_resumes_without_redoing_finished_shards(cluster, model_dir, tmp_path, monkeypatch):
    """The CLI joins the test's cluster (--address), is stopped with SIGINT
    after a few shards; --resume summarizes only the shards without a file
    and gives the rows of an uninterrupted run."""
    from spacy_bertsum.cli import _ray_engine

    src, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    lines = [json.dumps({"id": i, "text": TEXTS[i % 4]}) for i in range(600)]
    lines[500] = "{not json"
    write_jsonl(src, lines)
    cmd = [sys.executable, "-m", "spacy_bertsum", "summarize", str(src), "-o", str(out), "--model", str(model_dir),
           "--engine", "ray", "--address", cluster["address"], "--workers", "2", "--batch-size", "1", "-q"]
    # (the environment has RAY_AUTH_MODE=token from the cluster's start: an
    # explicit address needs it to join a cluster with token authentication)
    proc = subprocess.Popen(cmd, stderr=subprocess.PIPE)
    parts = Path(f"{out}.parts")
    deadline = time.time() + 240
    while len(list(parts.glob("part-*.jsonl"))) < 2 and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert proc.poll() is None, proc.stderr.read().decode()[-3000:]
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr.decode()[-3000:]
    assert b"--resume" in stderr
    finished = sorted(int(p.name[5:11]) for p in parts.glob("part-*.jsonl"))
    assert 2 <= len(finished) < 600 // 32

    sent = []
    run_wave = _ray_engine._Run._run_wave
    monkeypatch.setattr(_ray_engine._Run, "_run_wave",
                        lambda self, wave: (sent.extend(k for k, _ in wave), run_wave(self, wave))[1])
    stats, rows = _ray(src, out, model_dir, batch_size=1, resume=True)
    assert not set(sent) & set(finished) and sorted(sent + finished) == list(range(-(-600 // 32)))
    assert stats.resumed == 32 * len(finished) and (stats.rows, stats.failed) == (600, 1)
    _, expected = _local(src, tmp_path / "local.jsonl", model_dir)
    assert_same_rows(rows, expected)
    assert not parts.exists()
