"""aekit train --live: the no-display path, and the drawing on matplotlib's Agg backend (no real window)."""

import warnings

import matplotlib
import numpy as np
import pytest
from matplotlib.figure import Figure

from aekit.integrations.live import LiveFigure, LiveWindow, display_available
from aekit.visualization.latent import latent_view


@pytest.fixture
def agg(monkeypatch):
    monkeypatch.setenv("MPLBACKEND", "Agg")
    old = matplotlib.get_backend()
    matplotlib.use("Agg")
    yield
    matplotlib.use(old)


def test_without_a_display_one_line_and_training_goes_on(agg, tmp_path, capsys):
    from aekit.cli.main import main

    assert not display_available()
    assert main(["train", "--dataset", "mnist-sample", "--epochs", "1", "--hidden", "8", "--device", "cpu",
                 "--no-plots", "--live", "--out", str(tmp_path / "run")]) == 0
    captured = capsys.readouterr()
    notes = [line for line in captured.err.splitlines() if "--live" in line]
    assert notes == ["--live: no display to open a window on (matplotlib backend 'agg'); training without it"]
    assert "done: 1 epochs" in captured.out


def test_the_figure_draws_reconstructions_in_place_and_codes_by_dimension():
    rng = np.random.default_rng(0)
    live = LiveFigure(Figure(), "centered")
    originals = rng.integers(0, 256, (10, 1, 28, 28), dtype=np.uint8)
    live.show_reconstructions(originals, rng.uniform(-0.5, 0.5, (10, 1, 28, 28)), "step 1")
    image = live._image
    live.show_reconstructions(originals, np.zeros((10, 1, 28, 28)), "step 2")
    assert live._image is image and image.get_array().shape == (2 * 30 + 2, 10 * 30 + 2)
    second_row = image.get_array()[32:60, 2:30]
    assert second_row.min() == second_row.max() == 128  # zeros in the centred range are mid-grey
    assert live.images_ax.get_title() == "step 2"
    labels = np.arange(300) % 10
    for dims, axes_name in ((3, "3d"), (2, "rectilinear"), (16, "rectilinear"), (1, "rectilinear")):
        live.show_codes(latent_view(rng.normal(size=(300, dims)), labels))
        assert live.codes_ax.name == axes_name
        (points,) = live.codes_ax.collections
        assert len(points.get_offsets()) == 300
        assert [t.get_text() for t in live.codes_ax.get_legend().get_texts()] == [str(c) for c in range(10)]
    assert len(live.figure.axes) == 2  # the old codes' axes were replaced, not stacked
    live.figure.canvas.draw()


def test_the_window_callback_redraws_during_training(agg, sample_run):
    import torch

    from aekit.config import TrainConfig
    from aekit.models import create_model
    from aekit.training import Trainer

    data = sample_run.load_data()
    window = LiveWindow(data.x_test[:10], data.x_test[:200], data.y_test[:200], every_seconds=0.0)
    model = create_model("mlp", (1, 28, 28), hidden=(8,))
    x = torch.from_numpy(data.x_train[:256])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Agg cannot show a window, and says so
        Trainer(model, TrainConfig(epochs=2, batch_size=64), "unit", [window]).fit(x, x[:64])
    assert window.live.images_ax.get_title().startswith("after epoch 2: test mse")
    assert window.live.codes_ax.name == "3d" and len(window.live.codes_ax.collections[0].get_offsets()) == 200
    import matplotlib.pyplot as plt

    plt.close(window.live.figure)
