"""Transparency kept: color_mode rgba as a fourth channel, alpha_loss mask, RGBA pictures and exports."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import aekit
from aekit.cli.main import main
from aekit.data.folders import FolderOptions, load_folder
from aekit.errors import ConfigError
from aekit.models import create_model
from aekit.models.losses import alpha_masked
from aekit.visualization.images import CHECKER, composited, image_grid

pytestmark = pytest.mark.usefixtures("isolated_cache")

SIZE = 16
FAST = ["--model", "conv", "--channels", "4,8", "--latent-dim", "2", "--epochs", "1", "--batch-size", "8",
        "--device", "cpu"]


def _cut_out(rng) -> np.ndarray:
    """A 16x16 RGBA cut-out: the left half fully transparent over a stored red, a column at alpha 128."""
    rgba = np.empty((SIZE, SIZE, 4), np.uint8)
    rgba[..., :3] = rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)
    rgba[:, :SIZE // 2] = (255, 0, 0, 0)  # what the file stores under alpha 0 must not reach the pixels
    rgba[:, SIZE // 2:, 3] = 255
    rgba[:, SIZE // 2, 3] = 128
    return rgba


@pytest.fixture
def cutouts(tmp_path) -> Path:
    """19 RGBA cut-outs and one opaque RGB image (pure green) in a flat folder."""
    rng = np.random.default_rng(0)
    folder = tmp_path / "cutouts"
    folder.mkdir()
    for k in range(19):
        Image.fromarray(_cut_out(rng), "RGBA").save(folder / f"{k:02d}.png")
    Image.fromarray(np.full((SIZE, SIZE, 3), (0, 200, 0), np.uint8), "RGB").save(folder / "opaque.png")
    return folder


def _all(data) -> np.ndarray:
    return np.concatenate([data.x_train, data.x_test])


def test_rgba_keeps_alpha_as_a_fourth_channel_and_an_image_without_one_is_opaque(cutouts):
    x = _all(load_folder(cutouts, FolderOptions(color_mode="rgba")))
    assert x.shape == (20, 4, SIZE, SIZE) and x.dtype == np.uint8
    opaque = (x[:, :3] == np.array([0, 200, 0], np.uint8)[:, None, None]).all(axis=(1, 2, 3))
    assert opaque.sum() == 1
    assert (x[opaque, 3] == 255).all()
    cut = x[~opaque]  # (19, 4, H, W)
    assert (cut[:, 3, :, :SIZE // 2] == 0).all() and (cut[:, 3, :, SIZE // 2] == 128).all()
    assert (cut[:, 3, :, SIZE // 2 + 1:] == 255).all()
    assert (cut[:, :3, :, :SIZE // 2] == 255).all()  # the colour under alpha 0 is the (white) background, not red


def test_the_cache_keeps_rgb_and_rgba_apart(cutouts):
    rgb = _all(load_folder(cutouts, FolderOptions(color_mode="rgb"))).copy()
    rgba = _all(load_folder(cutouts, FolderOptions(color_mode="rgba"))).copy()
    again = _all(load_folder(cutouts, FolderOptions(color_mode="rgb")))
    assert rgb.shape[1] == 3 and rgba.shape[1] == 4 and again.shape[1] == 3
    np.testing.assert_array_equal(again, rgb)
    np.testing.assert_array_equal(rgba[:, :3], rgb)  # the colour is the composited image either way
    black = _all(load_folder(cutouts, FolderOptions(color_mode="rgba", alpha_background="black")))
    transparent = np.broadcast_to(black[:, 3:] == 0, black[:, :3].shape)
    assert black.shape[1] == 4 and transparent.any() and (black[:, :3][transparent] == 0).all()


def test_pad_leaves_the_padding_transparent(cutouts, tmp_path):
    wide = tmp_path / "wide"
    wide.mkdir()
    Image.fromarray(np.full((8, 16, 4), 255, np.uint8), "RGBA").save(wide / "a.png")  # 16 wide, 8 high
    x = _all(load_folder(wide, FolderOptions(image_size=(16, 16), resize="pad", color_mode="rgba",
                                             test_fraction=0.0)))
    assert (x[0, 3, :4] == 0).all() and (x[0, 3, 12:] == 0).all() and (x[0, 3, 4:12] == 255).all()


def _model(**fields):
    return create_model("conv", (4, 8, 8), latent_dim=2, channels=(4, 8), **fields)


@pytest.mark.parametrize("loss", ["mse", "l1", "bce", "ssim"])
def test_the_mask_ignores_the_colour_of_transparent_pixels(loss):
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(2, 4, 8, 8, generator=gen) * 0.8 + 0.1
    x[:, 3, :, :4] = 0.0  # the left half transparent
    recon_x = x.clone()
    recon_x[:, :3, :, :4] = torch.rand(2, 3, 8, 4, generator=gen)  # differs only where alpha is 0
    masked, plain = _model(alpha_loss="mask", loss=loss), _model(loss=loss)
    if loss == "bce":  # BCE is not 0 at recon_x == x: compare against the untouched reconstruction
        assert masked.reconstruction_loss(recon_x, x) == pytest.approx(masked.reconstruction_loss(x, x).item())
        assert plain.reconstruction_loss(recon_x, x) > plain.reconstruction_loss(x, x)
    else:
        assert masked.reconstruction_loss(recon_x, x) == 0
        assert plain.reconstruction_loss(recon_x, x) > 0
    wrong_alpha = x.clone()
    wrong_alpha[:, 3, :, :4] = 0.5  # the alpha's own error counts
    assert masked.reconstruction_loss(wrong_alpha, x) > masked.reconstruction_loss(x, x) + 1e-3
    wrong_colour = x.clone()
    wrong_colour[:, :3, :, 4:] = 1 - x[:, :3, :, 4:]  # so does the colour where the image is opaque
    assert masked.reconstruction_loss(wrong_colour, x) > masked.reconstruction_loss(x, x) + 1e-3


def test_on_an_opaque_image_the_mask_is_the_plain_loss():
    x = torch.rand(3, 4, 8, 8, generator=torch.Generator().manual_seed(1))
    x[:, 3] = 1.0
    recon_x = torch.rand(3, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    for loss in ("mse", "l1"):
        assert alpha_masked(loss, recon_x, x).item() == pytest.approx(_model(loss=loss).reconstruction_loss(
            recon_x, x).item(), rel=1e-5)


def test_the_mask_needs_four_channels_and_unit_pixels_and_turns_the_hand_written_gradient_off(cutouts, tmp_path,
                                                                                            capsys):
    with pytest.raises(ConfigError, match="alpha_loss"):
        create_model("conv", (3, 8, 8), latent_dim=2, channels=(4, 8), alpha_loss="mask")
    code = main(["train", *FAST, "--dataset", str(cutouts), "--color-mode", "rgba", "--alpha-loss", "mask",
                 "--scale", "centered", "--no-plots", "--out", str(tmp_path / "r")])
    assert code != 0 and "alpha_loss" in capsys.readouterr().err
    plain = create_model("mlp", (4, 8, 8), latent_dim=2, hidden=(8,))
    masked = create_model("mlp", (4, 8, 8), latent_dim=2, hidden=(8,), alpha_loss="mask")
    assert plain.gradient_function() is not None and masked.gradient_function() is None


def test_composited_shows_alpha_over_a_checkerboard():
    images = np.zeros((1, 4, 8, 8), np.uint8)
    images[0, 0] = 200  # red 200, alpha 0 on the left, 255 on the right
    images[0, 3, :, 4:] = 255
    rgb = composited(images)
    assert rgb.shape == (1, 3, 8, 8)
    assert set(np.unique(rgb[0, :, :, :4])) == set(CHECKER)  # the board shows through
    assert (rgb[0, :, :, 4:] == np.array([200, 0, 0])[:, None, None]).all()
    assert image_grid(images, 1, 1).shape == (12, 12, 3)
    grey = np.zeros((1, 1, 8, 8), np.uint8)
    assert composited(grey) is grey


def test_training_with_the_mask_draws_rgba_pictures_and_exports(cutouts, tmp_path):
    out = tmp_path / "run"
    code = main(["train", *FAST, "--dataset", str(cutouts), "--color-mode", "rgba", "--alpha-loss", "mask",
                 "--quiet", "--out", str(out)])
    assert code == 0
    run = aekit.load_run(out)
    assert run.model.input_shape == (4, SIZE, SIZE)
    assert np.isfinite([m["train_loss"] for m in run.metrics if "train_loss" in m]).all()
    recon = sorted((out / "recon").glob("*.png"))
    assert recon and (out / "report.html").exists()
    with Image.open(recon[-1]) as im:
        assert im.mode == "RGB"
        pixels = np.asarray(im)
    assert (pixels == CHECKER[1]).all(axis=-1).any()  # the originals' transparent half shows the board
    assert (out / "manifold.png").exists()  # a 2-D code: the decoder's RGBA output over the code plane
    from aekit.visualization.pictures import draw_pictures, draw_worst

    data = run.load_data()
    draw_pictures(run, data, "grid", n="2x3", recon=True)
    worst = draw_worst(run, data, [{"index": 0, "error": 0.5, "file": "00.png"}])
    with Image.open(worst) as im:
        assert im.mode == "RGB"
    with Image.open(out / "grid_recon.png") as im:  # a matplotlib figure, RGBA by matplotlib's choice: opaque
        assert im.mode == "RGBA" and (np.asarray(im)[..., 3] == 255).all()
    from aekit.integrations.export import ATOL, export_model, run_exported

    model = run.model.eval()
    x = np.random.default_rng(0).random((2, 4, SIZE, SIZE), dtype=np.float32)
    path = export_model(model, tmp_path / "encoder.onnx", "encoder", "onnx")
    with torch.no_grad():
        expected = model.encode(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(run_exported(path, x), expected, atol=ATOL, rtol=0)


def test_a_subset_of_the_stamps_with_alpha(testdata, tmp_path):
    stamps = sorted((testdata / "tuxpaint-stamps").rglob("*.png"))[::20][:40]
    if len(stamps) < 20:
        pytest.skip("the tuxpaint stamps are not in the test data")
    folder = tmp_path / "stamps"
    folder.mkdir()
    for k, path in enumerate(stamps):
        shutil.copy(path, folder / f"{k:02d}.png")
    out = tmp_path / "run"
    code = main(["train", *FAST, "--dataset", str(folder), "--image-size", "32", "--color-mode", "rgba",
                 "--alpha-loss", "mask", "--no-plots", "--quiet", "--out", str(out)])
    assert code == 0
    data = aekit.load_run(out).load_data()
    alpha = _all(data)[:, 3]
    assert data.image_shape == (4, 32, 32) and (alpha == 0).any() and (alpha == 255).any()


def test_the_scikit_learn_estimator_takes_rgba_rows():
    from aekit.integrations.sklearn import AutoencoderTransformer

    x = np.random.default_rng(0).integers(0, 256, (32, 8 * 8 * 4), dtype=np.uint8)  # (N, H*W*C) rows
    ae = AutoencoderTransformer(model="conv", latent_dim=2, epochs=1, batch_size=16, image_shape=(8, 8, 4),
                                channels_last=True, overrides={"channels": (4, 8)}, device="cpu").fit(x)
    assert ae.transform(x).shape == (32, 2) and ae.inverse_transform(ae.transform(x)).shape == x.shape


def _masked_by_hand(x: np.ndarray, recon_x: np.ndarray) -> float:
    """The mask's weighted mean written out: colour errors weighted by the true alpha, the alpha's own by 1."""
    sq = (recon_x.astype(np.float64) - x) ** 2  # (N, 4, H, W)
    alpha = x[:, 3]
    return float(((sq[:, :3] * alpha[:, None]).sum() + sq[:, 3].sum()) / (3 * alpha.sum() + alpha.size))


def test_eval_scores_the_visible_pixels_of_rgba_runs_for_the_model_and_pca(cutouts, tmp_path, capsys):
    from sklearn.decomposition import PCA

    from aekit.evaluation import suite
    from aekit.pixels import to_unit

    out = tmp_path / "run"
    assert main(["train", *FAST, "--dataset", str(cutouts), "--color-mode", "rgba", "--alpha-loss", "mask",
                 "--no-plots", "--quiet", "--out", str(out)]) == 0
    assert main(["eval", str(out), "--quiet"]) == 0
    summary = suite.from_json((out / "eval.json").read_text())
    results = summary["results"]
    run = aekit.load_run(out)
    data = run.load_data()
    x = data.x_test.astype(np.float64) / 255.0  # (N, 4, H, W)
    assert (x[:, 3] == 0).any()  # the test split holds transparent pixels, or the mask would not matter
    recon = to_unit(run.reconstruct(data.x_test), run.scale)
    k = summary["methods"]["pca_components"]
    pca = PCA(k, svd_solver="full").fit(data.x_train.reshape(len(data.x_train), -1) / 255.0)
    pca_recon = np.clip(pca.inverse_transform(pca.transform(x.reshape(len(x), -1))), 0, 1).reshape(x.shape)
    for row, r in ((results["model"], recon), (results["pca"], pca_recon)):
        assert row["masked_mse"] == pytest.approx(_masked_by_hand(x, r), rel=1e-5)
        assert row["alpha_mse"] == pytest.approx(float(np.mean((r[:, 3] - x[:, 3]) ** 2)), rel=1e-5)
        assert row["masked_mse"] != pytest.approx(row["mse"], rel=1e-3)  # the hidden colour no longer counts
    # the training loss's own function on the whole test set as one batch gives the model's number, and so did
    # the trainer, whose test split is one batch here (the model's float32 sums: to a relative 1e-6)
    loss = alpha_masked("mse", torch.from_numpy(recon).double(), torch.from_numpy(x)).item()
    assert results["model"]["masked_mse"] == pytest.approx(loss, rel=1e-6)
    assert run.config.model.loss == "mse" and run.config.model.loss_scale == 1 and len(x) <= 8
    assert results["model"]["masked_mse"] == pytest.approx(run.metrics[-1]["test_recon_loss"], rel=1e-6)
    table = capsys.readouterr().out
    assert "masked MSE (visible) ↓" in table and "alpha MSE ↓" in table
    assert main(["compare", str(out)]) == 0
    header = capsys.readouterr().out.splitlines()[0]
    assert "| masked_mse" in header and "| pca_masked_mse" in header

    rgb = tmp_path / "rgb"
    assert main(["train", *FAST, "--dataset", str(cutouts), "--no-plots", "--quiet", "--out", str(rgb)]) == 0
    assert main(["eval", str(rgb), "--quiet"]) == 0
    rgb_results = suite.from_json((rgb / "eval.json").read_text())["results"]
    assert "mse" in rgb_results["model"]
    assert not {"masked_mse", "alpha_mse"} & {key for row in rgb_results.values() for key in row}
