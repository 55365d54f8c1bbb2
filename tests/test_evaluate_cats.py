"""`evaluate-cats`: textcat scores and the confusion matrix."""
import json

import pytest
import spacy
from spacy.language import Language
from spacy.tokens import DocBin
from typer.testing import CliRunner

from spacy_bertsum.cli import app
from spacy_bertsum.cli.evaluate_cats import evaluate_cats


@Language.component("test_keyword_cats")
def keyword_cats(doc):
    """Predicts "weather" for docs that mention a storm, else "sport"."""
    storm = "storm" in doc.text.lower()
    doc.cats = {"weather": float(storm), "sport": float(not storm), "politics": 0.0}
    return doc


def _gold(nlp, path):
    rows = [
        ("The storm hit the coast.", "weather"),
        ("A storm of protest met the budget.", "politics"),  # predicted weather
        ("The team won the cup.", "sport"),
        ("The council voted on taxes.", "politics"),  # predicted sport
        ("Rain and storm warnings today.", "weather"),
    ]
    db = DocBin()
    for text, label in rows:
        doc = nlp.make_doc(text)
        doc.cats = {c: float(c == label) for c in ("weather", "sport", "politics")}
        db.add(doc)
    db.to_disk(path)
    return path


def test_confusion_matrix_and_scores(tmp_path):
    nlp = spacy.blank("en")
    nlp.add_pipe("test_keyword_cats")
    gold = _gold(nlp, tmp_path / "gold.spacy")
    result = evaluate_cats(nlp, gold, tmp_path / "cats.json")
    assert result["labels"] == ["politics", "sport", "weather"]
    # rows gold, columns predicted: politics -> sport once, -> weather once
    assert result["confusion"]["matrix"] == [[0, 1, 1], [0, 1, 0], [0, 0, 2]]
    assert result["accuracy"] == pytest.approx(3 / 5)
    assert result["per_class"]["weather"]["p"] == pytest.approx(2 / 3)
    assert result["per_class"]["weather"]["r"] == pytest.approx(1.0)
    assert result["per_class"]["politics"]["r"] == pytest.approx(0.0)
    # F1 per class: politics 0, sport 2/3 (p 1/2, r 1), weather 0.8 (p 2/3, r 1)
    assert result["macro_f"] == pytest.approx((0 + 2 / 3 + 0.8) / 3)
    assert json.loads((tmp_path / "cats.json").read_text())["confusion"]["matrix"] == result["confusion"]["matrix"]


def test_errors(tmp_path, nlp):
    """Gold docs without cats (E087), a pipeline without a textcat (E088)."""
    blank = spacy.blank("en")
    db = DocBin()
    db.add(blank.make_doc("No categories here."))
    db.to_disk(tmp_path / "plain.spacy")
    with pytest.raises(ValueError, match="E087"):
        evaluate_cats(blank, tmp_path / "plain.spacy")
    gold = _gold(blank, tmp_path / "gold.spacy")
    nlp.to_disk(tmp_path / "bertsum_only")
    result = CliRunner().invoke(app, ["evaluate-cats", str(tmp_path / "bertsum_only"), str(gold)])
    assert result.exit_code == 1 and "E088" in result.output
