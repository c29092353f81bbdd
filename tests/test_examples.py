"""The example scripts run end to end on the embedded default data."""

import json

import keras
import pytest

from tests import example_modules


def load_example(name):
    return example_modules.load(name)


def test_categorical_vae_runs_one_epoch_and_writes_its_files(tmp_path):
    example = load_example("categorical_vae")
    status = example.main(
        ["--epochs", "1", "--output-dir", str(tmp_path), "--verbose", "0"]
    )
    assert status == 0
    for name in ("metrics.json", "reconstructions.png", "samples.png"):
        assert (tmp_path / name).stat().st_size > 0
    metrics = json.loads((tmp_path / "metrics.json").read_text())
    assert metrics["backend"] == keras.backend.backend()
    assert metrics["dataset"] == "digits"
    assert len(metrics["seconds_per_epoch"]) == 1
    # A Bernoulli likelihood over 64 binary pixels: the negative ELBO of a
    # barely trained model lies between 0 and 64 * log(2) plus the KL, which
    # is at most 30 * log(10).
    assert 0.0 < metrics["test_neg_elbo"] < 64 * 0.6932 + 30 * 2.3026
    reloaded = keras.saving.load_model(tmp_path / "model.keras")
    assert reloaded.get_layer("latent").num_variables == 30


def test_categorical_vae_rejects_a_malformed_latent_flag(capsys):
    example = load_example("categorical_vae")
    with pytest.raises(SystemExit):
        example.main(["--latent", "30by10"])
    assert "--latent expects NxK" in capsys.readouterr().err


def test_categorical_vae_reports_a_missing_dataset(monkeypatch, capsys):
    example = load_example("categorical_vae")

    def unavailable(name, **kwargs):
        raise example.image_datasets.DatasetUnavailableError("install it")

    monkeypatch.setattr(example.image_datasets, "load_images", unavailable)
    assert example.main(["--dataset", "mnist"]) == 2
    assert "error: install it" in capsys.readouterr().err
