"""The Run methods check their arguments before any work, and evaluation repeats to the last digit."""

import numpy as np
import pytest
import torch

import aekit
from aekit.errors import ConfigError, InputError


@pytest.fixture(scope="module")
def images(sample_run):
    return sample_run.load_data().x_test[:50]


@pytest.mark.parametrize("method", ["encode", "reconstruct", "decode"])
@pytest.mark.parametrize("batch_size", [0, -1, 1.5, True, "10", None])
def test_batch_size_must_be_a_positive_integer(sample_run, images, method, batch_size):
    arg = images if method != "decode" else np.zeros((50, sample_run.model.latent_dim), np.float32)
    with pytest.raises(InputError, match=r"^batch_size: must be a positive integer, got "):
        getattr(sample_run, method)(arg, batch_size=batch_size)


def test_every_image_is_encoded_whatever_the_batch_size(sample_run, images):
    whole = sample_run.encode(images)
    for batch_size in (1, 7, np.int64(50), 10_000):  # another batch, another matrix product: the last bits move
        np.testing.assert_allclose(sample_run.encode(images, batch_size=batch_size), whole, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("z, says", [
    (np.zeros((4, 5)), r"z: shape \(4, 5\) does not fit the model's codes; expected \(N, 3\)"),
    (np.zeros((2, 3, 1)), r"z: shape \(2, 3, 1\) does not fit"),
    (np.zeros(3), r"z: shape \(3,\) .* one code: z\[None\], shape \(1, 3\)"),
    (np.zeros((0, 3)), r"z: no codes given \(shape \(0, 3\)\)"),
    (np.array([[0.0, np.nan, 0.0]]), r"z: the codes include NaN or infinity$"),
    (np.array([[0.0, -np.inf, 0.0]]), r"z: the codes include NaN or infinity$"),
    (np.array([[0.0, 1e39, 0.0]]), r"z: the codes include NaN or infinity in float32 \(beyond its range"),
    (np.array([["a", "b", "c"]]), r"z: expected numbers, got dtype <U1"),
    ([[0.0, 1.0, 2.0], [3.0]], r"z: not an array of codes \(ragged, or not numbers\)"),
])
def test_decode_checks_the_codes_against_the_model(sample_run, z, says):
    with pytest.raises(InputError, match=says):
        sample_run.decode(z)


def test_decode_takes_codes_as_arrays_tensors_or_lists(sample_run):
    z = np.random.default_rng(0).normal(size=(4, 3)).astype(np.float32)
    images = sample_run.decode(z)
    assert images.shape == (4, 1, 28, 28) and np.isfinite(images).all()
    assert np.array_equal(sample_run.decode(torch.from_numpy(z)), images)
    assert np.array_equal(sample_run.decode(z.tolist()), images)
    assert np.array_equal(sample_run.decode(z.astype(np.float64)), images)


@pytest.mark.parametrize("call, error, says", [
    (lambda run: run.sample(1.5, from_codes=True), InputError, r"^n: must be an integer, got 1.5$"),
    (lambda run: run.sample("3", from_codes=True), InputError, r"^n: must be an integer, got '3'$"),
    (lambda run: run.sample(0, from_codes=True), ConfigError, r"^n: must be from 1 to 100000, got 0$"),
    (lambda run: run.sample(10**12, from_codes=True), ConfigError, r"^n: must be from 1 to 100000"),
    (lambda run: run.sample(2, seed=1.5, from_codes=True), InputError, r"^seed: must be an integer"),
    (lambda run: run.sample(2, seed=-1, from_codes=True), ConfigError, r"^seed: must be from 0 to 2\*\*63 - 1"),
    (lambda run: run.sample(2, seed=2**64, from_codes=True), ConfigError, r"^seed: must be from 0"),
    (lambda run: run.interpolate(1.5, 2), InputError, r"^a: must be an integer, got 1.5$"),
    (lambda run: run.interpolate(0, True), InputError, r"^b: must be an integer, got True$"),
    (lambda run: run.interpolate(0, 1, steps=2.5), InputError, r"^steps: must be an integer"),
    (lambda run: run.interpolate(0, 1, steps=1), ConfigError, r"^steps: must be from 2 to 100000, got 1$"),
    (lambda run: run.interpolate(0, 1, steps=10**9), ConfigError, r"^steps: must be from 2 to 100000"),
    (lambda run: run.traverse(image=0.5), InputError, r"^image: must be an integer"),
    (lambda run: run.traverse(dims=[0, 1.5]), InputError, r"^dims: must be an integer, got 1.5$"),
    (lambda run: run.traverse(dims="0"), InputError, r"^dims: expected a code unit or a list of them"),
    (lambda run: run.traverse(dims=[]), InputError, r"^dims: no code units given"),
    (lambda run: run.traverse(dims=[3]), ConfigError, r"^dims 3: the code has units 0 to 2$"),
    (lambda run: run.traverse(steps=50_000), ConfigError, r"^steps: 3 unit\(s\) x 50000 steps is over 100000"),
    (lambda run: run.traverse(value_range=(0, float("nan"))), InputError, r"^value_range: expected two finite"),
    (lambda run: run.traverse(value_range=(1, 2, 3)), InputError, r"^value_range: expected two finite"),
    (lambda run: run.traverse(value_range=5), InputError, r"^value_range: expected two finite"),
])
def test_drawing_methods_check_their_arguments_first(sample_run, call, error, says):
    with pytest.raises(error, match=says):
        call(sample_run)


def test_drawing_methods_take_what_they_document(sample_run):
    data = sample_run.load_data()
    assert sample_run.sample(np.int64(3), seed=np.int64(1), from_codes=True, data=data).shape == (3, 1, 28, 28)
    assert sample_run.interpolate(0, 1, steps=3, data=data).shape == (5, 1, 28, 28)
    assert sample_run.traverse(dims=1, steps=4, value_range=(2, -2), data=data).shape == (4, 1, 28, 28)
    assert sample_run.traverse(dims=np.array([0, 2]), steps=3, data=data).shape == (6, 1, 28, 28)



@pytest.mark.parametrize("call, python, cli", [
    (lambda run: run.sample(0, from_codes=True), "n: must be from 1", "--n: must be from 1"),
    (lambda run: run.traverse(dims=[3]), "dims 3: the code has units 0 to 2", "--dim 3: the code has units 0 to 2"),
    (lambda run: run.interpolate(0, 5000), "b 5000: mnist-sample has test images", "--b 5000: mnist-sample has"),
    (lambda run: aekit.train(resume=run.path, epochs=9, lr=0.1, beta=2.0),
     "resume: the run continues with its own config; only epochs, device, checkpoint_every and max_memory can "
     "change, not beta, lr",
     "--resume: the run continues with its own config; only --epochs, --device, --checkpoint-every and "
     "--max-memory can change, not --beta, --lr"),
])
def test_python_errors_name_parameters_and_the_cli_prints_them_as_flags(sample_run, call, python, cli):
    from aekit.cli.main import as_flags

    with pytest.raises(ConfigError) as caught:
        call(sample_run)
    assert str(caught.value).startswith(python) and "--" not in str(caught.value)
    assert as_flags(caught.value).startswith(cli)


def test_the_flag_rewrite_leaves_paths_prose_and_dotted_fields_alone():
    from aekit.cli.main import as_flags
    from aekit.errors import AekitError

    err = AekitError("out runs/out.d/out: holds a run; continue it with resume=runs/out", params=("out", "resume"))
    assert as_flags(err) == "--out runs/out.d/out: holds a run; continue it with --resume=runs/out"
    err = AekitError("tensorboard needs aekit's tensorboard extra: pip install 'aekit[tensorboard]'",
                     params=("tensorboard",))
    assert as_flags(err) == "--tensorboard needs aekit's tensorboard extra: pip install 'aekit[tensorboard]'"
    err = AekitError("train.lr: try a lower train.lr or value_range", params=("train.lr", "train.lr", "value_range"))
    assert as_flags(err) == "--lr: try a lower --lr or --range"
    assert as_flags(ConfigError("k: no params, no rewrite")) == "k: no params, no rewrite"


# --------------------------------------------------------------------------- evaluation repeats


def _evaluate(run, data):
    from aekit.evaluation import EvalSettings

    settings = EvalSettings.from_values(probe_train=1000, semi_sizes=(10,), semi_draws=1, kmeans_init=1)
    summary = aekit.evaluate(run, settings=settings, data=data, cache=False, log=lambda line: None).summary
    return {name: {k: v for k, v in row.items() if "second" not in k} for name, row in summary["results"].items()}


def _close(a, b, rel):
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_close(a[k], b[k], rel) for k in a)
    if isinstance(a, float):
        return a == pytest.approx(b, rel=rel)
    return a == b


@pytest.mark.slow
def test_two_evaluations_of_a_run_are_identical_and_thread_counts_move_only_the_last_digits(sample_run):
    from threadpoolctl import threadpool_limits

    data = sample_run.load_data()
    first = _evaluate(sample_run, data)
    assert _evaluate(sample_run, data) == first  # the same threads: to the last digit
    threads = torch.get_num_threads()
    try:  # another split of the sums (docs/training.md#determinism): only the last digits may move
        torch.set_num_threads(1)
        with threadpool_limits(1):
            one_thread = _evaluate(sample_run, data)
    finally:
        torch.set_num_threads(threads)
    assert _close(one_thread, first, rel=1e-7)
