"""report.html opened in real headless Chromium: the Plotly figure renders, every image decodes,
the page asks for nothing but itself, and a screenshot of it is not blank.

Chromium is Debian's ``chromium`` (``bash scripts/test`` installs it when missing); without
it these tests are skipped. See tests/browser.py for how requests are observed.
"""

import io
import shutil

import numpy as np
import pytest
from browser import Chromium, find_chromium
from PIL import Image

import aekit

pytestmark = pytest.mark.skipif(find_chromium() is None, reason="chromium is not installed")

PLOT_DRAWN = ("document.readyState === 'complete' && "
              "document.querySelectorAll('#latent .js-plotly-plot .main-svg').length > 0")


@pytest.fixture(scope="module")
def browser():
    with Chromium(width=1280, height=1000) as b:
        yield b


@pytest.fixture(scope="module")
def run2d(tmp_path_factory):
    out = tmp_path_factory.mktemp("browser") / "relu2d"
    return aekit.train("classic-2d-relu", dataset="mnist-sample", epochs=1, device="cpu", out=out,
                       verbose=False, progress=False)


def _alone(run_dir, tmp_path):
    """report.html copied into an empty folder: a reference to any other file would break."""
    page = tmp_path / "report.html"
    shutil.copy(run_dir / "report.html", page)
    return page.as_uri()


def _no_other_requests(page, url):
    others = [u for u in page.requests if u != url and not u.startswith("data:")]
    assert page.requests[0] == url  # the log works: it saw the page itself
    assert others == []


def _images_decoded(page) -> list:
    return page.evaluate("Array.from(document.images).map(i => [i.alt, i.complete && i.naturalWidth > 0])")


def _not_blank(png: bytes, min_height: int):
    shot = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
    assert shot.shape[0] >= min_height
    colourful = (shot.max(2) - shot.min(2)) > 60  # saturated pixels: the rainbow classes, the plots
    dark = shot.sum(2) < 150  # digits' black backgrounds, text
    assert colourful.mean() > 0.002 and dark.mean() > 0.01, (colourful.mean(), dark.mean())
    assert len(np.unique(shot @ np.array([1 << 16, 1 << 8, 1]))) > 500  # distinct colours


def test_3d_report_renders_webgl_and_requests_nothing(sample_run, browser, tmp_path):
    url = _alone(sample_run.path, tmp_path)
    page = browser.open(url, ready=PLOT_DRAWN)
    canvases = page.evaluate("Array.from(document.querySelectorAll('#latent .gl-container canvas'))"
                             ".map(c => [c.width, c.height])")
    assert canvases and all(w > 300 and h > 300 for w, h in canvases)  # the WebGL scene
    assert page.evaluate("document.querySelectorAll('#latent .legend .traces').length") == 10
    assert page.evaluate("document.body.innerText.includes('WebGL is not supported')") is False
    images = _images_decoded(page)
    assert len(images) >= 3 and all(ok for _, ok in images), images  # loss, gif, latent
    assert page.evaluate("document.querySelector('#recon img').src.startsWith('data:image/gif;base64,')")
    assert page.console_errors == []
    _no_other_requests(page, url)
    _not_blank(page.screenshot(), min_height=2000)


def test_2d_report_renders_svg_points_and_manifold(run2d, browser, tmp_path):
    url = _alone(run2d.path, tmp_path)
    page = browser.open(url, ready=PLOT_DRAWN)
    n_test = len(run2d.load_data().x_test)
    assert page.evaluate("document.querySelectorAll('#latent .scatterlayer .point').length") == n_test
    sections = page.evaluate("Array.from(document.querySelectorAll('section h2')).map(h => h.textContent)")
    assert sections == ["Summary", "Training", "Reconstructions during training", "The codes",
                        "Code map and manifold", "Configuration"]
    images = _images_decoded(page)
    assert [alt for alt, _ in images][-1] == "decoder output over the code plane" and all(ok for _, ok in images)
    _no_other_requests(page, url)
    png = page.screenshot()
    _not_blank(png, min_height=1500)
    (run2d.path / "report_screenshot.png").write_bytes(png)


def test_the_request_log_catches_a_page_that_loads_from_elsewhere(browser, tmp_path):
    """The check above is only worth something if it sees requests when there are some."""
    page_path = tmp_path / "leaky.html"
    (tmp_path / "local.png").write_bytes(b"not really")
    page_path.write_text('<html><head><link rel="stylesheet" href="http://127.0.0.1:9/x.css"></head>'
                         '<body><img src="http://127.0.0.1:9/x.png"><img src="local.png"></body></html>')
    page = browser.open(page_path.as_uri())
    others = [u for u in page.requests if u != page_path.as_uri()]
    assert "http://127.0.0.1:9/x.css" in others and "http://127.0.0.1:9/x.png" in others
    assert (tmp_path / "local.png").as_uri() in others
