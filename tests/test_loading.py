"""Which pipeline a name means: one resolution order for every command."""
import pytest
import spacy

import spacy_bertsum.loading as loading
from spacy_bertsum.loading import find_bertsum, load_model, resolve_model


@pytest.fixture
def saved(nlp, tmp_path):
    nlp.to_disk(tmp_path / "model")
    return tmp_path / "model"


def test_shipped_name_without_a_path_or_package_is_the_shipped_copy(saved, tmp_path, monkeypatch):
    shipped = tmp_path / "pipelines"
    shipped.mkdir()
    (shipped / "en_bertsum_news").symlink_to(saved)
    monkeypatch.setattr(loading, "PIPELINES_DIR", shipped)
    monkeypatch.chdir(tmp_path)
    assert resolve_model("en_bertsum_news") == shipped / "en_bertsum_news"
    assert load_model(None).pipe_names == ["sentencizer", "bertsum"]


def test_installed_package_shadows_the_shipped_copy(saved, tmp_path, monkeypatch):
    """After `spacy package` + pip install of en_bertsum_news, --model
    en_bertsum_news is the installed package, as for spacy.load."""
    shipped = tmp_path / "pipelines"
    shipped.mkdir()
    (shipped / "en_bertsum_news").symlink_to(saved)
    monkeypatch.setattr(loading, "PIPELINES_DIR", shipped)
    monkeypatch.setattr(loading, "is_package", lambda name: name == "en_bertsum_news")
    monkeypatch.chdir(tmp_path)
    assert resolve_model("en_bertsum_news") == "en_bertsum_news"


def test_a_directory_of_that_name_comes_first(saved, tmp_path, monkeypatch):
    monkeypatch.setattr(loading, "is_package", lambda name: True)
    work = tmp_path / "work"
    work.mkdir()
    (work / "en_bertsum_news").symlink_to(saved)
    monkeypatch.chdir(work)
    assert resolve_model("en_bertsum_news") == "en_bertsum_news"
    assert load_model("en_bertsum_news").pipe_names == ["sentencizer", "bertsum"]


def test_unknown_names_and_missing_package_data(tmp_path, monkeypatch):
    monkeypatch.setattr(loading, "PIPELINES_DIR", tmp_path / "none")
    monkeypatch.chdir(tmp_path)
    with pytest.raises(OSError, match=r"\[E020\]"):
        load_model(None)
    with pytest.raises(OSError, match=r"\[E050\]"):
        load_model("no_such_pipeline_xyz")


def test_int8_on_gpu_and_pipelines_without_bertsum(nlp):
    with pytest.raises(ValueError, match=r"\[E038\]"):
        load_model(nlp, gpu_id=0, int8=True)
    assert find_bertsum(nlp) == "bertsum"
    plain = spacy.blank("en")
    plain.add_pipe("sentencizer")
    with pytest.raises(ValueError, match=r"\[E037\].*sentencizer"):
        find_bertsum(plain)
