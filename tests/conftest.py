import http.server
import os
import socket
import threading

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


class FileServer:
    """An HTTP server on 127.0.0.1 serving fixed bytes at /<name>, counting requests.

    Names ending in ``/`` are served as HTML (a package index's pages).
    """

    def __init__(self, files: dict[str, bytes]):
        self.files, self.requests = files, []
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.requests.append(self.path)
                name = self.path.lstrip("/")
                body = server.files.get(name)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                if name.endswith("/"):
                    self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):  # keep test output clean
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve():
    """``serve({name: bytes})`` starts a :class:`FileServer`; all are stopped after the test."""
    servers = []

    def start(files):
        servers.append(FileServer(files))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


@pytest.fixture
def closed_port_url():
    """A URL on 127.0.0.1 where nothing listens: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}/"


@pytest.fixture
def register(monkeypatch):
    """Add a named source to the registry for this test only."""
    from aekit.data.sources import SOURCES

    def add(source):
        monkeypatch.setitem(SOURCES, source.name, source)
        return source

    return add


@pytest.fixture
def isolated_cache(tmp_path, monkeypatch):
    """An empty cache for one test, and no mirror override from the environment; returns the cache path."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("AEKIT_CACHE", str(cache))
    monkeypatch.delenv("AEKIT_MIRRORS", raising=False)
    return cache
