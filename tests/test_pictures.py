"""The pictures of a run: recon.gif, latent plots of 1-, 2-, 3- and 16-D codes, manifold, loss, grids,
the report page's parts, and the rule that training never imports matplotlib or plotly.
"""

import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from PIL import Image

import aekit
from aekit.data import ImageData, load_dataset
from aekit.errors import ConfigError, RunError
from aekit.models import create_model
from aekit.pixels import to_uint8
from aekit.visualization import interactive, plots
from aekit.visualization.animation import frame_label, read_frames, write_recon_gif
from aekit.visualization.latent import class_colors, latent_view
from aekit.visualization.pictures import draw_pictures, parse_grid_size
from aekit.visualization.report import ReportInputs, Section, build_report, json_table, json_table_section
from aekit.visualization.snapshots import first_epoch_steps


@pytest.fixture(scope="module")
def data():
    return load_dataset("mnist-sample")


@pytest.fixture(scope="module")
def run2d(tmp_path_factory):
    """The 2-D seed preset, 2 short epochs, with every picture (16 steps an epoch at batch 256)."""
    out = tmp_path_factory.mktemp("pictures") / "relu2d"
    return aekit.train("classic-2d-relu", dataset="mnist-sample", epochs=2, device="cpu", out=out,
                       verbose=False, progress=False)


@pytest.fixture(scope="module")
def small_data(data):
    """200 test images (20 a class): enough for a cloud, cheap to encode and project."""
    idx = np.concatenate([np.flatnonzero(data.y_test == c)[:20] for c in range(10)])
    return ImageData("small", data.x_train[:10], data.y_train[:10], data.x_test[idx], data.y_test[idx])


# --------------------------------------------------------------------------- recon.gif

def test_first_epoch_frames_are_denser_at_the_start():
    assert first_epoch_steps(16, 6) == [1, 2, 4, 8]
    assert first_epoch_steps(938, 6) == [15, 29, 59, 117, 234, 469]
    assert first_epoch_steps(1, 6) == []


def test_recon_gif_has_a_labelled_frame_per_snapshot(run2d):
    frames = read_frames(run2d.path / "recon")
    # before training, steps 1, 2, 4, 8 of the first epoch, then the end of each epoch
    assert [(f["epoch"], f["step"]) for f in frames] == [
        (0, 0), (1 / 16, 1), (2 / 16, 2), (4 / 16, 4), (8 / 16, 8), (1, 16), (2, 32)]
    png = Image.open(run2d.path / "recon" / "epoch_002.png")
    gif = Image.open(run2d.path / "recon.gif")
    assert gif.n_frames == len(frames)
    assert gif.size == (png.width, png.height + 22)  # the caption strip on top
    seen = []
    for k in range(gif.n_frames):
        gif.seek(k)
        seen.append(np.asarray(gif.convert("L")))
    captions = [s[:22] for s in seen]
    assert all((c < 128).sum() > 50 for c in captions)  # text drawn on every frame
    assert not np.array_equal(captions[0], captions[1])  # and it changes
    body = png.height // 2 + 22
    assert np.array_equal(seen[0][22:body], seen[-1][22:body])  # originals stay put
    assert not np.array_equal(seen[0][body:], seen[-1][body:])  # reconstructions change
    assert np.array_equal(seen[-1][22:], np.asarray(png.convert("L")))  # the last frame is the last epoch
    assert (run2d.path / "recon.gif").stat().st_size < 2_000_000


def test_frame_labels():
    assert frame_label(0, 0) == "epoch 0 (step 0)"
    assert frame_label(0.25, 16) == "epoch 0.25 (step 16)"
    assert frame_label(3, None) == "epoch 3"


def test_gif_from_an_older_run_without_an_index(run2d, tmp_path):
    recon = tmp_path / "recon"
    recon.mkdir()
    for name in ("epoch_000.png", "epoch_001.png", "epoch_002.png"):
        (recon / name).write_bytes((run2d.path / "recon" / name).read_bytes())
    gif = Image.open(write_recon_gif(recon, tmp_path / "r.gif"))
    assert gif.n_frames == 3
    with pytest.raises(RunError, match="no reconstruction snapshots"):
        write_recon_gif(tmp_path / "empty", tmp_path / "x.gif")


# --------------------------------------------------------------------------- run directory files

def test_training_writes_every_picture_and_they_decode(run2d):
    for name, min_size in (("latent.png", (500, 400)), ("manifold.png", (500, 500)), ("loss.png", (500, 300)),
                           ("recon.png", (600, 100))):
        img = Image.open(run2d.path / name)
        img.load()
        assert img.width >= min_size[0] and img.height >= min_size[1], name
        assert np.asarray(img.convert("L")).std() > 10, f"{name} is blank"
    html = (run2d.path / "latent.html").read_text()
    assert "Plotly.newPlot" in html and '<script src="http' not in html and len(html) > 3_000_000
    assert (run2d.path / "report.html").exists()


def test_no_plots_means_no_pictures(tmp_path):
    run = aekit.train(dataset="mnist-sample", epochs=1, device="cpu", out=tmp_path / "r", verbose=False,
                      progress=False, plots=False)
    assert sorted(p.name for p in run.path.iterdir()) == [
        "best.safetensors", "checkpoint.safetensors", "config.json", "metrics.jsonl"]


def test_a_drawing_failure_is_one_warning_and_keeps_the_run(tmp_path, monkeypatch):
    import aekit.visualization.pictures as pictures

    def broken(*args, **kwargs):
        raise RuntimeError("no fonts today")

    monkeypatch.setattr(pictures, "draw_pictures", broken)
    lines = []
    run = aekit.train(dataset="mnist-sample", epochs=1, device="cpu", out=tmp_path / "r", verbose=False,
                      progress=False, log=lines.append)
    lines = [line for line in lines if "under-trained" not in line]  # one epoch: the run says it is short too
    assert len(lines) == 1 and lines[0].startswith("warning: could not draw") and "no fonts today" in lines[0]
    assert str(run.path) in lines[0]
    assert aekit.load_run(run.path).metrics == run.metrics


def test_training_imports_neither_matplotlib_nor_plotly():
    code = """
import sys, tempfile, torch
from aekit.config import TrainConfig
from aekit.models import create_model
from aekit.training import Trainer
from aekit.visualization.snapshots import ReconSnapshots
x = torch.randint(0, 256, (64, 1, 28, 28), dtype=torch.uint8)
snaps = ReconSnapshots(x[:4], tempfile.mkdtemp())
Trainer(create_model("mlp", hidden=(16,)), TrainConfig(epochs=2, batch_size=16), callbacks=[snaps]).fit(x, x)
assert len(snaps.frames) == 1 + 2 + 2, snaps.frames  # start, steps 1 and 2 of epoch 1, two epoch ends
print(sorted(m for m in ("matplotlib", "plotly", "sklearn") if m in sys.modules))
"""
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == "[]"


def test_grid_and_recon_counts(run2d, data):
    draw_pictures(run2d, data, "grid", n="3x5")
    grid = Image.open(run2d.path / "grid.png")
    assert grid.width > grid.height  # 5 columns, 3 rows
    fig = plots.plot_images(data.x_test, 3, 5)
    mosaic = fig.axes[0].images[0].get_array()
    assert mosaic.shape == (3 * 30 + 2, 5 * 30 + 2)  # 28-pixel images, 2-pixel gaps
    assert np.array_equal(mosaic[32:60, 62:90], data.x_test[7, 0])  # row 1, column 2 is image 7
    draw_pictures(run2d, data, "grid", n="2x4", recon=True)
    assert (run2d.path / "grid_recon.png").exists()
    assert parse_grid_size("8") == (8, 8) and parse_grid_size("4x6") == (4, 6)
    with pytest.raises(ConfigError, match="grid size like 8x8"):
        parse_grid_size("8 by 8")


def test_draw_pictures_rejects_what_it_cannot_draw(sample_run, data):
    with pytest.raises(ConfigError, match="needs a 2-D code; this run's code is 3-D"):
        draw_pictures(sample_run, data, "manifold")
    with pytest.raises(ConfigError, match="choose one of: recon, latent, manifold, loss, grid"):
        draw_pictures(sample_run, data, "histogram")
    assert not (sample_run.path / "manifold.png").exists()  # skipped for a 3-D code by default


# --------------------------------------------------------------------------- latent plots

def test_2d_code_is_a_scatter_with_a_legend_of_its_classes(small_data):
    torch.manual_seed(0)
    model = create_model("mlp", hidden=(32,), latent_dim=2)
    fig = plots.plot_latent(model, small_data)
    (ax,) = fig.axes  # no colour bar
    assert ax.name == "rectilinear" and len(ax.collections[0].get_offsets()) == 200
    legend = ax.get_legend()
    assert [t.get_text() for t in legend.get_texts()] == [str(c) for c in range(10)]
    assert legend.get_title().get_text() == "class"
    assert [h.get_color() for h in legend.legend_handles] == class_colors(10)
    assert ax.get_title() == "2-D codes of 200 test images"
    figure = interactive.interactive_latent(model, small_data)
    assert [t.type for t in figure.data] == ["scatter"] * 10
    assert [t.name for t in figure.data] == [str(c) for c in range(10)]  # legend toggles classes
    trace = figure.data[3]
    assert all(small_data.y_test[int(i)] == 3 for i, _ in trace.customdata)  # hover: image index, label
    assert "test image #%{customdata[0]}" in trace.hovertemplate


def test_3d_code_draws_each_point_as_its_digit(small_data):
    torch.manual_seed(0)
    model = create_model("mlp", hidden=(32,), latent_dim=3)
    fig = plots.plot_latent(model, small_data)
    ax = fig.axes[0]
    assert ax.name == "3d"
    texts = ax.texts
    assert sorted(t.get_text() for t in texts) == sorted(str(c) for c in small_data.y_test)
    colors = class_colors(10)
    assert all(t.get_color() == colors[int(t.get_text())] for t in texts)  # tab10 by class
    figure = interactive.interactive_latent(model, small_data)
    assert {t.type for t in figure.data} == {"scatter3d"}


def test_up_to_20_classes_get_tableaus_palette_and_more_a_rainbow():
    from matplotlib import colormaps
    from matplotlib.colors import to_hex

    tab10, tab20 = ([to_hex(c) for c in colormaps[name].colors] for name in ("tab10", "tab20"))
    assert class_colors(9) == tab10[:9] and class_colors(10) == tab10
    assert class_colors(20) == tab20[0::2] + tab20[1::2]  # the ten strong colours, then their light partners
    assert len(set(class_colors(20))) == 20
    rainbow = class_colors(21)
    assert len(set(rainbow)) == 21 and rainbow[0] != tab10[0]


def test_named_classes_are_in_the_legend_and_many_classes_in_a_colour_bar():
    rng = np.random.default_rng(0)
    names = ["animals", "clothes", "food", "hobbies", "household", "medical", "military", "nature", "people"]
    labels = np.arange(270) % 9
    view = latent_view(rng.normal(size=(270, 2)), labels, names)
    (ax,) = plots.plot_codes(view).axes
    assert [t.get_text() for t in ax.get_legend().get_texts()] == names
    ax = plots.plot_codes(latent_view(rng.normal(size=(270, 3)), labels, names)).axes[0]
    assert [t.get_text() for t in ax.get_legend().get_texts()][:2] == ["0: animals", "1: clothes"]  # 3-D draws numbers
    figure = interactive.interactive_codes(view)
    assert [(t.name, t.marker.color) for t in figure.data] == list(zip(names, class_colors(9)))
    many = latent_view(rng.normal(size=(300, 2)), np.arange(300) % 30, [f"c{i}" for i in range(30)])
    ax, cbar = plots.plot_codes(many).axes
    assert ax.get_legend() is None and [t.get_text() for t in cbar.get_yticklabels()][:2] == ["c0", "c1"]


def test_16d_code_is_projected_and_says_how(small_data):
    torch.manual_seed(0)
    model = create_model("mlp", hidden=(32,), latent_dim=16)
    fig = plots.plot_latent(model, small_data)
    ax = fig.axes[0]
    assert ax.name == "rectilinear" and ax.get_xlabel() == "PC 1"
    assert ax.get_title().startswith("16-D codes, PCA to 2-D (") and "of the variance" in ax.get_title()
    figure = interactive.interactive_latent(model, small_data)
    assert {t.type for t in figure.data} == {"scatter"} and "PCA" in figure.layout.title.text
    from sklearn.decomposition import PCA

    z = model.encode(torch.from_numpy(small_data.x_test).float() / 255).detach().numpy()
    expected = PCA(2).fit_transform(z)
    drawn = latent_view(z, small_data.y_test).points
    assert np.allclose(np.abs(drawn), np.abs(expected), atol=1e-4)  # PCA up to the sign of each axis


def test_tsne_on_request_and_bad_projection(small_data):
    z = np.random.default_rng(0).normal(size=(200, 16)) + small_data.y_test[:, None]
    view = latent_view(z, small_data.y_test, projection="tsne")
    assert view.points.shape == (200, 2) and view.title.startswith("16-D codes, t-SNE")
    assert view.axis_names == ["t-SNE 1", "t-SNE 2"]
    with pytest.raises(ConfigError, match="projection: 'umap' is not allowed"):
        latent_view(z, small_data.y_test, projection="umap")


def test_1d_code_gets_a_row_per_class(small_data):
    model = create_model("mlp", hidden=(32,), latent_dim=1)
    ax = plots.plot_latent(model, small_data).axes[0]
    assert [t.get_text() for t in ax.get_yticklabels()] == [str(c) for c in range(10)]


# --------------------------------------------------------------------------- manifold and loss

def test_manifold_is_the_decoder_over_a_grid(small_data):
    torch.manual_seed(0)
    model = create_model("mlp", hidden=(32,), latent_dim=2)
    fig = plots.plot_manifold(model, n=5, extent=(-1.0, 1.0, -2.0, 2.0))
    image = fig.axes[0].images[0]
    mosaic = image.get_array()
    assert mosaic.shape == (5 * 28, 5 * 28)
    assert tuple(image.get_extent()) == (-1.0, 1.0, -2.0, 2.0)
    corner = to_uint8(model.decode_codes(np.array([[-1.0, 2.0], [1.0, -2.0]])))  # top left: lowest z1, highest z2
    assert np.array_equal(mosaic[:28, :28], corner[0, 0])
    assert np.array_equal(mosaic[-28:, -28:], corner[1, 0])
    assert fig.axes[0].get_title() == "Decoder output over a 5×5 grid of the code plane"
    with pytest.raises(ConfigError, match="needs a 2-D code"):
        plots.plot_manifold(create_model("mlp", latent_dim=3), small_data)


def test_loss_goes_log_when_it_spans_a_decade():
    flat = [{"epoch": e, "train_loss": 0.05 - e * 0.001, "test_loss": 0.05} for e in (1, 2, 3)]
    steep = [{"epoch": e, "train_loss": 10.0 ** -e, "test_loss": 10.0 ** -e} for e in (1, 2, 3)]
    assert plots.plot_loss(flat).axes[0].get_yscale() == "linear"
    ax = plots.plot_loss(steep).axes[0]
    assert ax.get_yscale() == "log"
    assert [line.get_label() for line in ax.get_lines()] == ["train", "test"]
    assert list(ax.get_lines()[1].get_ydata()) == [0.1, 0.01, 0.001]
    with pytest.raises(ConfigError, match="no finished epoch"):
        plots.plot_loss([])


# --------------------------------------------------------------------------- report parts

def test_json_table_renders_any_json():
    flat = json_table({"mse": 0.0123456, "ssim": 0.8, "name": "a<b"})
    assert flat.count("<tr>") == 3 and "0.0123456" in flat and "a&lt;b" in flat
    rows = json_table([{"k": 1, "mse": 0.5}, {"k": 2, "acc": 0.9}])
    assert "<th>k</th><th>mse</th><th>acc</th>" in rows and rows.count("<tr>") == 3
    nested = json_table({"pca": {"mse": 0.1}, "ae": {"mse": 0.05}})
    assert "<th>pca</th>" in nested and "<th>mse</th>" in nested


def test_report_includes_optional_sections_when_their_files_exist(run2d, tmp_path):
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    for name in ("config.json", "metrics.jsonl", "loss.png"):
        (run_dir / name).write_bytes((run2d.path / name).read_bytes())
    page = build_report(ReportInputs.from_run_dir(run_dir))
    assert "Evaluation" not in page and "Reconstructions" not in page
    assert page.count('<img src="data:image/png;base64,') == 1 and "Configuration" in page
    (run_dir / "eval.json").write_text(json.dumps({
        "dataset": {"name": "mnist-sample", "test": 1000},
        "labels": {"model": "classic-2d-relu", "pca": "PCA-2"},
        "results": {"model": {"mse": 0.0421, "ssim": 0.77}, "pca": {"mse": 0.0512, "ssim": 0.61}},
        "anomaly": {"worst": [{"index": 17, "label": 3, "error": 0.19}]}}))
    page = build_report(ReportInputs.from_run_dir(run_dir))
    assert '<section id="eval"><h2>Evaluation</h2>' in page
    assert "<th>metric</th><th>classic-2d-relu</th><th>PCA-2</th>" in page
    assert "<tr><th>MSE per pixel ↓</th><td>0.04210</td><td>0.05120</td></tr>" in page
    assert "#17 (label 3, 0.1900)" in page
    (run_dir / "eval.json").write_text("{broken")
    assert "eval.json could not be read" in build_report(ReportInputs.from_run_dir(run_dir))
    extra = [lambda inp: Section("Notes", "<p>hello</p>"), json_table_section("other.json", "Other")]
    page = build_report(ReportInputs.from_run_dir(run_dir), extra)
    assert "<h2>Notes</h2><p>hello</p>" in page and "Other" not in page and "Configuration" not in page
    with pytest.raises(RunError, match="not a run directory"):
        ReportInputs.from_run_dir(tmp_path)


@pytest.mark.parametrize("preset, overrides, expected", [
    ("conv-16", {}, "conv: channels 32, 48 (subpixel decoder), 16-D code, relu"),
    ("classic-3d-tanh", {}, "mlp: hidden 128, 64, 12, 3-D code, tanh"),
    ("vae-2d", {"arch": "conv", "channels": (8, 16)}, "vae (conv body): channels 8, 16 (subpixel decoder), 2-D code"),
    ("vae-2d", {}, "vae (mlp body): hidden "),
])
def test_the_summary_shows_the_network_that_was_trained(tmp_path, preset, overrides, expected):
    from aekit.resolve import build_config
    from aekit.visualization.report import summary_section

    config = build_config(preset, None, **overrides).to_dict()
    body = summary_section(ReportInputs(tmp_path, config)).body
    model = body.split('<div class="k">model</div><div class="v">', 1)[1].split("</div>", 1)[0]
    assert model.startswith(expected)
    assert ("hidden" in model) == ("hidden" in expected)  # a conv body's unused hidden widths are not shown


def test_the_code_map_of_one_or_two_test_images_shows_their_first_two_units():
    import numpy as np

    from aekit.visualization.latent import latent_view

    for n in (1, 2):
        z = np.arange(n * 16, dtype=float).reshape(n, 16)
        view = latent_view(z, None)
        assert view.points.shape == (n, 2) and (view.points == z[:, :2]).all()
        assert view.axis_names == ["z1", "z2"] and f"too few test images to project: {n}" in view.title
