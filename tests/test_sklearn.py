"""AutoencoderTransformer as scikit-learn sees it: the estimator checks, pipelines, grid search, pickling."""

import pickle
import pickletools

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.cluster import KMeans
from sklearn.datasets import load_digits
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.utils.estimator_checks import parametrize_with_checks

from aekit.sklearn import AnomalyDetector, AutoencoderTransformer

SMALL = {"hidden": (8,), "latent_dim": 2, "epochs": 1, "device": "cpu"}


def small(**params):
    return AutoencoderTransformer(**{**SMALL, **params})


@parametrize_with_checks([small(), AnomalyDetector(small())])  # every check, none expected to fail
def test_scikit_learn_estimator_checks(estimator, check):
    check(estimator)


@pytest.mark.parametrize("model", ["mlp", "vae"])
def test_a_rows_code_and_score_do_not_depend_on_its_batch(digits, model):
    """Bit for bit: a score that moved with its neighbours could flip predict at the threshold."""
    x, _ = digits
    det = AnomalyDetector(small(model=model, hidden=(32,)), contamination=0.1).fit(x[:300])
    scores, codes = det.decision_function(x), det.autoencoder_.transform(x)
    rng = np.random.default_rng(0)
    for rows in ([5], [0, 1], list(range(63)), list(range(65)), rng.permutation(len(x))[:500], rng.permutation(len(x))):
        np.testing.assert_array_equal(det.decision_function(x[rows]), scores[rows])
        np.testing.assert_array_equal(det.autoencoder_.transform(x[rows]), codes[rows])
    np.testing.assert_array_equal(det.decision_scores_, scores[:300])


@pytest.fixture(scope="module")
def digits():
    """scikit-learn's 8x8 digits: 1,797 rows of 64 integer features in 0..16 (tabular for us)."""
    x, y = load_digits(return_X_y=True)
    return x, y


@pytest.fixture(scope="module")
def sample():
    from aekit.data import load_dataset

    data = load_dataset("mnist-sample")
    return data.x_train.reshape(len(data.x_train), -1), data.y_train, data


def test_fit_returns_self_and_learns_underscore_attributes_only(digits):
    x, _ = digits
    ae = small(epochs=2)
    assert ae.fit(x) is ae
    assert ae.n_features_in_ == 64 and ae.n_components_ == 2 and ae.scaling_ == "minmax"
    assert ae.input_shape_ == (1, 1, 64) and len(ae.history_) == 2
    assert ae.center_.shape == ae.scale_.shape == (64,)
    scaled = (x - ae.center_) / ae.scale_  # min-max to the model's range [0, 1]
    assert scaled.min() == 0 and scaled.max() == 1
    assert ae.get_params()["epochs"] == 2 and ae.config_.train.epochs == 2


def test_transform_inverse_transform_and_score(digits):
    x, _ = digits
    ae = small(epochs=3, latent_dim=8, hidden=(32,)).fit(x)
    z = ae.transform(x)
    assert z.shape == (len(x), 8) and z.dtype == np.float64
    assert ae.transform(x.astype(np.float32)).dtype == np.float32
    back = ae.inverse_transform(z)
    assert back.shape == x.shape
    # inverse_transform undoes the scaling: its error in X's units is the model's error times scale_**2
    per_feature = np.mean((back - x) ** 2, axis=0) / ae.scale_ ** 2
    np.testing.assert_allclose(per_feature.mean(), -ae.score(x), rtol=1e-4)
    assert ae.reconstruction_error(x).shape == (len(x),)
    with pytest.raises(ValueError, match="codes of 8"):
        ae.inverse_transform(z[:, :3])


def test_unfitted_use_and_bad_input_raise_scikit_learns_errors(digits):
    x, _ = digits
    with pytest.raises(NotFittedError):
        small().transform(x)
    ae = small().fit(x)
    with pytest.raises(ValueError, match="X has 10 features"):
        ae.transform(x[:, :10])
    with pytest.raises(ValueError, match="scaling"):
        small(scaling="log").fit(x)
    with pytest.raises(ValueError, match="also given as the epochs parameter"):
        small(overrides={"epochs": 3}).fit(x)
    with pytest.raises(ValueError, match="model.latent_dim: must be >= 1"):  # aekit's ConfigError is a ValueError
        small(latent_dim=0).fit(x)


def test_in_a_pipeline_before_logistic_regression_and_kmeans(digits):
    x, y = digits
    params = {"hidden": (64,), "latent_dim": 16, "epochs": 6, "device": "cpu"}
    clf = make_pipeline(AutoencoderTransformer(**params), LogisticRegression(max_iter=500)).fit(x[:1200], y[:1200])
    assert clf.score(x[1200:], y[1200:]) > 0.8  # chance is 0.1
    clusters = make_pipeline(AutoencoderTransformer(**params), KMeans(10, n_init=2, random_state=0)).fit_predict(x)
    assert len(np.unique(clusters)) == 10


def test_grid_search_over_the_code_size(digits):
    x, _ = digits
    search = GridSearchCV(small(hidden=(32,), epochs=2), {"latent_dim": [2, 16]}, cv=2).fit(x[:600])
    assert search.best_params_ == {"latent_dim": 16}  # score is the negative reconstruction error
    assert search.best_estimator_.n_components_ == 16


def test_clone_and_set_params_keep_parameters_only(digits):
    x, _ = digits
    ae = small(overrides={"activation": "relu"}).fit(x)
    copy = clone(ae)
    assert copy.get_params() == ae.get_params() and not hasattr(copy, "model_")
    copy.set_params(latent_dim=5)
    assert copy.latent_dim == 5 and ae.latent_dim == 2


def test_pickles_with_safetensors_weights_and_no_torch_object(digits):
    x, _ = digits
    ae = small(model="vae", epochs=2).fit(x)
    blob = pickle.dumps(ae)
    strings = {arg for _, arg, _ in pickletools.genops(blob) if isinstance(arg, str)}  # module names among them
    assert not any(s.split(".")[0] == "torch" for s in strings), "a torch object was pickled"
    again = pickle.loads(blob)
    np.testing.assert_array_equal(again.transform(x), ae.transform(x))
    assert hasattr(ae.model_, "encode")  # pickling left the fitted estimator alone


def test_image_rows_uint8_and_floats_agree_and_shapes_are_inferred(sample):
    x, _, _ = sample
    ae = small(epochs=1).fit(x[:500])
    assert ae.scaling_ == "pixels" and ae.input_shape_ == (1, 28, 28)  # uint8 rows: pixels, 784 = 28*28
    np.testing.assert_allclose(ae.transform(x[:50] / 255.0), ae.transform(x[:50]), atol=1e-6)
    with pytest.raises(ValueError, match=r"float pixels must be in \[0, 1\]"):
        ae.transform(x[:5].astype(np.float64))
    with pytest.raises(ValueError, match="cannot infer the image shape of 200"):
        small(scaling="pixels").fit(np.zeros((4, 200)))
    with pytest.raises(ValueError, match="image_shape"):
        small(image_shape=(1, 20, 20)).fit(x[:4])
    assert small(image_shape=(28, 28, 1)).fit(x[:4]).input_shape_ == (1, 28, 28)  # one channel: either order


def test_colour_rows_are_refused_until_their_order_is_given():
    colour = np.zeros((4, 3 * 8 * 8), np.uint8)
    with pytest.raises(ValueError, match=r"rows of 192 pixels: colour images 8x8, flattened as \(8, 8, 3\) .*"
                                         r"or as \(3, 8, 8\) \(PyTorch\)\? Say which with channels_last=True"):
        small().fit(colour)
    with pytest.raises(ValueError, match=r"image_shape \(3, 8, 8\): is it \(C, H, W\) or \(H, W, C\)\?"):
        small(image_shape=(3, 8, 8)).fit(colour)
    with pytest.raises(ValueError, match="channels_last: expected True, False or None, got 'hwc'"):
        small(channels_last="hwc").fit(colour)
    assert small(channels_last=True).fit(colour).input_shape_ == (3, 8, 8)
    assert small(image_shape=(8, 8, 3), channels_last=True).fit(colour).channels_last_
    fitted = small(image_shape=(3, 8, 8), channels_last=False).fit(colour)
    assert fitted.input_shape_ == (3, 8, 8) and not fitted.channels_last_
    assert small().get_params()["channels_last"] is None  # __init__ stores it; fit checks it


@pytest.fixture(scope="module")
def pillow_photos(testdata):
    """Twenty real colour photos (nebulae) as Pillow gives them: (32, 32, 3) uint8 arrays."""
    from PIL import Image

    folder = testdata / "stellarium-nebulae"
    if not folder.is_dir():
        pytest.skip(f"no real photos in {testdata} (scripts/test fetches them from Debian)")
    paths = sorted(folder.glob("*.png"))[:20]
    return np.stack([np.asarray(Image.open(p).convert("RGB").resize((32, 32))) for p in paths])


def test_channel_last_rows_from_pillow_reach_the_model_unscrambled(pillow_photos):
    images = pillow_photos  # (20, 32, 32, 3): height, width, channel
    rows = images.reshape(len(images), -1)
    ae = small(image_shape=(32, 32, 3), channels_last=True).fit(rows)
    assert ae.input_shape_ == (3, 32, 32)
    np.testing.assert_array_equal(ae._to_model(rows).numpy(), images.transpose(0, 3, 1, 2) / np.float32(255))
    # the same pictures as (C, H, W) rows train the same model, to the bit
    chw = small(image_shape=(3, 32, 32), channels_last=False).fit(images.transpose(0, 3, 1, 2).reshape(20, -1))
    np.testing.assert_array_equal(chw.transform(images.transpose(0, 3, 1, 2).reshape(20, -1)), ae.transform(rows))
    # inverse_transform gives rows in the order they came in
    back = ae.inverse_transform(ae.transform(rows))
    assert back.shape == rows.shape
    np.testing.assert_allclose(np.mean((back - rows / 255) ** 2, axis=1), ae.reconstruction_error(rows), rtol=1e-5)


def test_the_pillow_example_runs_as_written(pillow_photos, tmp_path, monkeypatch):
    """The channel-last example in docs/integrations.md, run on real photos saved as PNG files."""
    from pathlib import Path

    from PIL import Image

    page = Path(__file__).resolve().parents[1] / "docs" / "integrations.md"
    code = page.read_text().split("<!-- pillow example -->", 1)[1].split("```python\n", 1)[1].split("```", 1)[0]
    (tmp_path / "photos").mkdir()
    for i, image in enumerate(pillow_photos):
        Image.fromarray(image).resize((64, 64)).save(tmp_path / "photos" / f"{i:02}.png")
    monkeypatch.chdir(tmp_path)
    namespace = {}
    exec(compile(code.replace("epochs=5", "epochs=1"), str(page), "exec"), namespace)
    ae, X = namespace["ae"], namespace["X"]
    assert X.shape == (20, 64 * 64 * 3) and ae.input_shape_ == (3, 64, 64) and ae.channels_last_


def test_conv_body_on_pixels_with_a_centred_preset(sample):
    x, _, data = sample
    ae = AutoencoderTransformer("conv-16", epochs=1, image_shape=(28, 28), device="cpu",
                                overrides={"channels": (4, 8)}).fit(x[:300])
    assert type(ae.model_).__name__ == "ConvAutoEncoder" and ae.transform(x[:7]).shape == (7, 16)
    centred = small(preset="classic-2d-relu").fit(x[:300])
    assert centred.config_.data.scale == "centered"
    import torch

    model_input = centred._to_model(x[:2].astype(np.float64) / 255.0)  # float pixels reach the model centred
    np.testing.assert_allclose(model_input.numpy(), data.x_train[:2] / np.float32(255) - 0.5, atol=1e-6)
    assert isinstance(model_input, torch.Tensor)


def test_standard_scaling_gets_a_linear_output(digits):
    x, _ = digits
    ae = small(scaling="standard", epochs=2).fit(x)
    assert ae.config_.model.output_activation == "linear"
    np.testing.assert_allclose(ae.center_, x.mean(0))
    kept = small(scaling="standard", overrides={"output_activation": "tanh"}).fit(x)
    assert kept.config_.model.output_activation == "tanh"


def test_fits_are_reproducible_and_leave_the_global_generator_alone(digits):
    import torch

    x, _ = digits
    torch.manual_seed(123)
    before = torch.rand(1)
    torch.manual_seed(123)
    a = small(random_state=7).fit(x).transform(x)
    assert torch.rand(1) == before
    np.testing.assert_array_equal(small(random_state=7).fit(x).transform(x), a)
    assert not np.array_equal(small(random_state=8).fit(x).transform(x), a)


def test_feature_names_from_a_data_frame(digits):
    pd = pytest.importorskip("pandas")
    x, _ = digits
    frame = pd.DataFrame(x[:100], columns=[f"f{i}" for i in range(64)])
    ae = small().fit(frame)
    assert list(ae.feature_names_in_[:2]) == ["f0", "f1"]
    assert list(ae.get_feature_names_out()) == ["autoencodertransformer0", "autoencodertransformer1"]
