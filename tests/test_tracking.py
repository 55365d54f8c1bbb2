"""Experiment tracking through spaCy's loggers: a few `spacy train` steps with
the chain the configs document (the console table with its JSONL log file, and
spacy-loggers' MLflow logger on a local file store), then the run's metrics
read back with MLflow's client and the same evaluations in the log file that
the report's training curve reads."""
import json

import pytest
import spacy
from spacy.tokens import DocBin

from spacy_bertsum.cli._report_curve import SPACY_LOG, read_training_log

from .util import CPU_CONFIG, make_examples, tiny_training_overrides

STEPS, EVAL_FREQUENCY = 4, 2
#: spaCy evaluates after the first update (step 0) and then every EVAL_FREQUENCY steps.
EVAL_STEPS = [0, 2, 4]


@pytest.fixture
def corpus(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    path = tmp_path / "train.spacy"
    DocBin(docs=[eg.reference for eg in make_examples(nlp)], store_user_data=True).to_disk(path)
    return path


@pytest.mark.slow
def test_mlflow_logger_records_the_run(tiny_encoder, corpus, tmp_path, monkeypatch):
    mlflow = pytest.importorskip("mlflow")
    pytest.importorskip("spacy_loggers")
    from mlflow.tracking import MlflowClient
    from spacy.cli.train import train

    store = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 refuses file stores without it
    monkeypatch.chdir(tmp_path)  # anything MLflow writes next to the store stays in tmp_path
    log_path = tmp_path / "train_log.jsonl"
    overrides = {
        **tiny_training_overrides(tiny_encoder, corpus),
        "training.max_steps": STEPS,
        "training.eval_frequency": EVAL_FREQUENCY,
        "training.batcher.size": 2,
        "training.optimizer.learn_rate.warmup_steps": 1,
        "training.optimizer.learn_rate.total_steps": STEPS,
    }
    # The chain documented in configs/bertsum_cpu.cfg [training.logger].
    overrides["training.logger"] = {
        "@loggers": "spacy.ChainLogger.v1",
        "logger1": {"@loggers": "spacy.ConsoleLogger.v3", "progress_bar": None, "console_output": True,
                    "output_file": str(log_path)},
        "logger2": {"@loggers": "spacy.MLflowLogger.v2", "run_name": "bertsum-test",
                    "remove_config_values": ["paths.train", "paths.dev"]},
    }
    # Without an output directory: with one, the MLflow logger also logs each
    # new model-best as an MLflow model (slow, and MLflow 3 then repeats the
    # run's metric points).
    train(CPU_CONFIG, None, overrides=overrides)
    assert mlflow.active_run() is None  # the logger's finalize ended the run

    client = MlflowClient(tracking_uri=store.as_uri())
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [r.info.run_name for r in runs] == ["bertsum-test"]
    run = runs[0]
    assert run.info.status == "FINISHED"
    # the config as parameters, without the removed paths
    assert run.data.params["training.max_steps"] == str(STEPS)
    assert run.data.params["components.bertsum.model.encoder.name"] == tiny_encoder
    assert "paths.train" not in run.data.params
    # one value per evaluation for the score, the loss and each dev score
    metrics = run.data.metrics
    assert {"score", "loss_bertsum", "bertsum_rouge1_f", "bertsum_rouge2_f", "bertsum_rougeLsum_f"} <= set(metrics)
    history = {key: [m.value for m in client.get_metric_history(run.info.run_id, key)]
               for key in ("score", "loss_bertsum", "bertsum_rouge1_f")}
    assert all(len(values) == len(EVAL_STEPS) for values in history.values()), history
    assert all(0.0 <= v <= 1.0 for v in history["score"] + history["bertsum_rouge1_f"])
    assert all(v > 0 for v in history["loss_bertsum"])

    # The same evaluations in the log file, and the report's curve of it.
    rows = [json.loads(line) for line in log_path.read_text(encoding="utf8").splitlines()]
    assert [r["step"] for r in rows] == EVAL_STEPS
    assert [r["score"] for r in rows] == pytest.approx(history["score"])
    assert [r["losses"]["bertsum"] for r in rows] == pytest.approx(history["loss_bertsum"])
    curve = read_training_log(log_path)
    assert curve.source == SPACY_LOG
    assert [p.step for p in curve.points] == EVAL_STEPS
    assert [p.rouge["rouge1"] for p in curve.points] == pytest.approx([100 * v for v in history["bertsum_rouge1_f"]])
    # mean loss per step: spaCy sums the loss over the steps since the last evaluation
    assert [p.loss for p in curve.points] == pytest.approx(
        [history["loss_bertsum"][0], history["loss_bertsum"][1] / 2, history["loss_bertsum"][2] / 2]
    )
