import os

import pytest


@pytest.fixture(autouse=True, scope="session")
def _isolated_cache(tmp_path_factory):
    """Tests never read or write the user's cache."""
    old = os.environ.get("AEKIT_CACHE")
    os.environ["AEKIT_CACHE"] = str(tmp_path_factory.mktemp("aekit-cache"))
    yield
    if old is None:
        os.environ.pop("AEKIT_CACHE", None)
    else:
        os.environ["AEKIT_CACHE"] = old


@pytest.fixture(scope="session")
def sample_run(tmp_path_factory):
    """A short run of the default preset on the bundled sample, shared by read-only tests."""
    import aekit

    out = tmp_path_factory.mktemp("runs") / "default"
    return aekit.train(dataset="mnist-sample", epochs=2, device="cpu", out=out, verbose=False, progress=False)


@pytest.fixture(autouse=True, scope="session")
def _no_package_index():
    """No test reaches the real package index by accident; the tests of that source serve their own."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("AEKIT_PACKAGE_INDEX", "off")
        yield


@pytest.fixture(scope="session")
def testdata():
    """Where ``scripts/test`` keeps real test data (photos, wheels): ``$AEKIT_TESTDATA``."""
    from pathlib import Path

    return Path(os.environ.get("AEKIT_TESTDATA", "~/.cache/aekit-testdata")).expanduser()
