"""Hostile inputs, generated and seeded: every one loads, or ends in one AekitError line, in bounded memory and time.

Each case is a small file or folder written by :func:`make_case` from a seeded
``random.Random``: random bytes under every suffix, truncated and header-crafted
PNG and JPEG files, ``.npy``/``.npz`` files with extreme values, dtypes and
declared shapes, CSV text, crafted IDX headers, CIFAR batches holding nested,
shared, cyclic or forbidden pickles, and (for the command line) config files
nested deep or holding huge values.

The loader cases run in one worker process under an address-space limit
(``RLIMIT_AS``), one case at a time with a time limit each; a case that raises
anything but an :class:`~aekit.errors.AekitError`, runs over its time or kills
the worker is a failure, reported with its seed so it can be rerun alone:
``make_case(random.Random(SEED), ...)``. A handful go through ``aekit train``
in subprocesses: exit 0, or exit 2 with one error line
last on stderr and no traceback.

The unmarked tests run a fast subset; ``-m slow`` runs a few hundred cases.
"""

from __future__ import annotations

import gzip
import io
import json
import math
import os
import pickle
import random
import resource
import struct
import subprocess
import sys
import tarfile
import textwrap
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

LOADER_MEMORY = 1 << 30  # bytes of address space: aekit.data with numpy and Pillow takes about 160 MB
CLI_MEMORY = 4 << 30  # torch alone maps about 650 MB, and its threads reserve more
LOADER_SECONDS = 20  # per case, on a loaded machine; a bounded case takes well under one
CLI_SECONDS = 240

# One case per line on stdin: [spec, data_dir]; one JSON answer per line on stdout.
_WORKER = textwrap.dedent("""
    import json, sys, traceback
    from aekit.data import load_dataset
    from aekit.errors import AekitError
    for line in sys.stdin:
        spec, data_dir = json.loads(line)
        try:
            load_dataset(spec, data_dir, download=False, progress=False, log=lambda _: None)
            answer = {"outcome": "loaded"}
        except AekitError as e:
            answer = {"outcome": "refused", "message": str(e)}
        except BaseException as e:
            answer = {"outcome": "bug", "message": "".join(traceback.format_exception(e))[-3000:]}
        print(json.dumps(answer), flush=True)
""")


def _limit_memory(limit: int):
    return lambda: resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


# --------------------------------------------------------------------------- the generators

def _chunk(kind: bytes, data: bytes, crc_ok: bool = True) -> bytes:
    crc = zlib.crc32(kind + data) if crc_ok else 0
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", crc)


def crafted_png(rng: random.Random) -> bytes:
    """A PNG whose header claims anything, with a little image data."""
    width = rng.choice([0, 1, 7, 255, 13000, 65535, 2**31 - 1, 2**32 - 1, rng.randrange(1, 5000)])
    height = rng.choice([0, 1, 7, 255, 13000, 65535, 2**31 - 1, 2**32 - 1, rng.randrange(1, 5000)])
    depth, colour = rng.choice([1, 2, 4, 8, 16, 3, 0, 255]), rng.choice([0, 2, 3, 4, 6, 1, 7])
    body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 300)))
    if rng.random() < 0.5:
        body = b"\0" * rng.choice([10, 1000, 100_000])
    chunks = [_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, rng.choice([0, 0, 1, 2])))]
    if rng.random() < 0.3:
        chunks.append(_chunk(b"PLTE", bytes(rng.randrange(256) for _ in range(rng.choice([0, 3, 30, 768, 800])))))
    if rng.random() < 0.2:
        chunks.append(_chunk(b"tRNS", bytes(rng.randrange(256) for _ in range(rng.randrange(0, 10)))))
    chunks.append(_chunk(b"IDAT", zlib.compress(body), crc_ok=rng.random() < 0.9))
    if rng.random() < 0.8:
        chunks.append(_chunk(b"IEND", b""))
    return b"\x89PNG\r\n\x1a\n" + b"".join(chunks)


def real_image(rng: random.Random, fmt: str) -> bytes:
    mode = rng.choice(["L", "RGB", "RGBA", "I;16", "P", "1", "LA", "CMYK", "F", "I"])
    size = (rng.randrange(1, 40), rng.randrange(1, 40))
    modes_ok = {"PNG": {"L", "RGB", "RGBA", "I;16", "P", "1", "LA"}, "JPEG": {"L", "RGB", "CMYK"},
                "GIF": {"L", "P", "1"}, "BMP": {"L", "RGB", "P", "1"}, "TIFF": {"L", "RGB", "I;16", "F", "CMYK", "I"},
                "WEBP": {"RGB", "RGBA"}}[fmt]
    if mode not in modes_ok:
        mode = "L"
    image = Image.new(mode, size)
    if mode in ("L", "RGB", "RGBA", "P", "LA", "CMYK"):
        image = Image.frombytes(mode, size, bytes(rng.randrange(256) for _ in range(len(image.tobytes()))))
    buf = io.BytesIO()
    image.save(buf, fmt)
    return buf.getvalue()


def damaged_image(rng: random.Random) -> tuple[str, bytes]:
    """A real image truncated, with bytes flipped, or (JPEG) with its frame size rewritten."""
    fmt = rng.choice(["PNG", "JPEG", "GIF", "BMP", "TIFF", "WEBP"])
    data = bytearray(real_image(rng, fmt))
    how = rng.choice(["truncate", "flip", "frame"])
    if how == "truncate":
        data = data[:rng.randrange(0, len(data))]
    elif how == "flip":
        for _ in range(rng.randrange(1, 8)):
            data[rng.randrange(len(data))] = rng.randrange(256)
    elif fmt == "JPEG":
        at = data.find(b"\xff\xc0")
        if at > 0:
            data[at + 5:at + 9] = struct.pack(">HH", rng.choice([0, 1, 65535, 13000]), rng.choice([0, 1, 65535]))
    suffix = {"JPEG": ".jpg", "TIFF": ".tif"}.get(fmt, f".{fmt.lower()}")
    return suffix, bytes(data)


def npy_header(shape, descr: str, fortran: bool = False) -> bytes:
    header = repr({"descr": descr, "fortran_order": fortran, "shape": tuple(shape)}).encode()
    header += b" " * (-(10 + len(header) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(header)) + header


def crafted_npy(rng: random.Random) -> bytes:
    """An .npy header declaring any shape and dtype over a few random bytes."""
    dims = [rng.choice([0, 1, 2, 3, 4, 28, 255, 2**31, 2**40, 10**12]) for _ in range(rng.randrange(0, 6))]
    descr = rng.choice(["|u1", "<f8", "<i8", "<c16", "|b1", "<U3", "|V4", "|O", ">u2", "<f2", "<M8[s]", "<u8"])
    body = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 200)))
    return npy_header(dims, descr, rng.random() < 0.2) + body


def extreme_array(rng: random.Random, role: str) -> np.ndarray:
    """A real array of a small, odd shape and extreme values; ``role`` is "x" or "y"."""
    n = rng.choice([0, 1, 2, 5, 20])
    shape = {"x": rng.choice([(n,), (n, 28), (n, 25), (n, 4, 4), (n, 4, 4, 1), (n, 4, 4, 3), (n, 3, 4, 4),
                              (n, 3, 4, 3), (n, 2, 4, 4), (n, 0, 0), (n, 4, 4, 4), (n, 1, 1, 1, 1)]),
             "y": rng.choice([(n,), (n, 1), (n, 2), (n + 1,)])}[role]
    dtype = rng.choice([np.uint8, np.int64, np.float64, np.float32, np.bool_, np.uint64, np.int8, np.complex64,
                        np.float16])
    special = rng.choice([0, 255, 256, -1, 1e300, 10**12, 2**63 - 1, np.nan, np.inf, 0.5, 10**30])
    values = np.array([rng.choice([0, 1, 9, special]) for _ in range(int(np.prod(shape)))], dtype=object)
    with np.errstate(all="ignore"):
        try:
            return values.astype(np.float64).astype(dtype).reshape(shape)
        except (OverflowError, ValueError, TypeError):
            return np.zeros(shape, dtype)


def crafted_npz(rng: random.Random) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        keys = rng.choice([["x"], ["x", "y"], ["images", "labels"], ["x_train", "y_train", "x_test", "y_test"],
                           ["x_train", "y_train", "x_test"], ["z"], []])
        for key in keys:
            if rng.random() < 0.2:
                data = crafted_npy(rng)
            else:
                arr = extreme_array(rng, "y" if key.startswith(("y", "labels")) else "x")
                member = io.BytesIO()
                np.save(member, arr)
                data = member.getvalue()
            z.writestr(f"{key}.npy", data)
        if rng.random() < 0.3:
            names = rng.choice([np.array(["a", "b"]), np.array([1, 2]), np.array(["é"] * 20_000), np.zeros((2, 2))])
            member = io.BytesIO()
            np.save(member, names)
            z.writestr("class_names.npy", member.getvalue())
    return buf.getvalue()


def crafted_csv(rng: random.Random) -> bytes:
    cols = rng.choice([1, 2, 5, 17, 785])
    values = ["0", "1", "255", "256", "-1", "1e400", "nan", "inf", "0.5", "99999999999999999999", "x", "", " 7 "]
    rows = [",".join(rng.choice(values[:3] if rng.random() < 0.7 else values) for _ in range(cols))
            for _ in range(rng.randrange(0, 12))]
    text = "\n".join(rows)
    if rng.random() < 0.3:
        text = "label," + ",".join(f"p{i}" for i in range(cols - 1)) + "\n" + text
    data = text.encode()
    if rng.random() < 0.2:
        data = b"\xef\xbb\xbf" + data
    if rng.random() < 0.1:
        data += b"\x00\xff\xfe"
    return data


def crafted_idx(rng: random.Random, images: bool) -> bytes:
    magic = rng.choice([0x803 if images else 0x801, 0x803, 0x801, 0x80D, 0xFFFFFFFF, 0])
    ndim = 3 if images else 1
    dims = [rng.choice([0, 1, 2, 28, 2**16, 2**32 - 1]) for _ in range(ndim)]
    declared = math.prod(dims)
    body_len = rng.choice([0, 10, 100, declared if declared < 5000 else 7])
    body = bytes(rng.randrange(256) for _ in range(body_len))
    data = struct.pack(">I", magic) + struct.pack(f">{ndim}I", *dims) + body
    if rng.random() < 0.3:
        data = data[:rng.randrange(0, len(data) + 1)]
    if rng.random() < 0.3:
        data = gzip.compress(data) if rng.random() < 0.7 else b"\x1f\x8b" + data
    return data


def hostile_pickle(rng: random.Random) -> bytes:
    """A CIFAR batch that is not one: shared or cyclic nesting, a forbidden call, odd values, random bytes."""
    kind = rng.choice(["shared", "cycle", "deep", "call", "values", "bytes", "bytes_call"])
    if kind == "shared":
        inner: list = []
        for _ in range(rng.choice([30, 60, 99])):
            inner = [inner, inner]
        return pickle.dumps({"data": inner, "labels": inner}, protocol=2)
    if kind == "cycle":
        cycle: list = []
        cycle.append(cycle)
        return pickle.dumps({"data": cycle, "labels": cycle, "label_names": cycle}, protocol=2)
    if kind == "deep":
        n = rng.choice([150, 100_000])  # written as opcodes: pickle.dumps itself recurses
        return b"\x80\x02" + b"]" * n + b"a" * (n - 1) + b"."  # n empty lists, each appended to the one below
    if kind == "call":
        return b"cos\nsystem\n(S'echo pwned'\ntR."
    if kind == "bytes_call":
        return b"c_codecs\nencode\n(S'x'\nS'rot13'\ntR."
    if kind == "values":
        data = rng.choice([np.zeros((2, 3072), np.uint8), np.zeros((2, 3072), np.float64), np.zeros(3, np.uint8),
                           np.array([1, None], dtype=object), "text"])
        labels = rng.choice([[0, 1], [10**12, 1], [-1, 0], ["a", "b"], [0.5, 1], list(range(3))])
        return pickle.dumps({b"data": data, b"labels": labels, "label_names": [b"x"] * rng.choice([0, 1, 10])},
                            protocol=2)
    return bytes(rng.randrange(256) for _ in range(rng.randrange(0, 400)))


def _image_folder(rng: random.Random, root: Path, hostile: list[tuple[str, bytes]]) -> Path:
    """A folder of a few good images (or none) beside the hostile files."""
    folder = root / "images"
    classes = ["a", "b"] if rng.random() < 0.5 else [""]
    for name in classes:
        (folder / name).mkdir(parents=True, exist_ok=True)
    for i in range(rng.choice([0, 3, 12])):
        (folder / classes[i % len(classes)] / f"good{i}.png").write_bytes(real_image(rng, "PNG"))
    for i, (suffix, data) in enumerate(hostile):
        (folder / rng.choice(classes) / f"bad{i}{suffix}").write_bytes(data)
    return folder


KINDS = ("random_bytes", "crafted_png", "damaged_image", "crafted_npy", "extreme_npy", "crafted_npz", "csv",
         "csv_pair", "idx", "cifar")


def make_case(rng: random.Random, kind: str, root: Path) -> tuple[str, str | None]:
    """Write one hostile input under ``root``; return ``(spec, data_dir)`` for :func:`aekit.data.load_dataset`."""
    root.mkdir(parents=True)
    if kind == "random_bytes":
        suffix = rng.choice([".npz", ".npy", ".csv", ".png", ".jpg", ".gif", ".tif", ".webp", ".bmp"])
        data = bytes(rng.randrange(256) for _ in range(rng.choice([0, 1, 8, 64, 1000])))
        if suffix in (".npz", ".npy", ".csv"):
            (root / f"f{suffix}").write_bytes(data)
            return str(root / f"f{suffix}"), None
        return str(_image_folder(rng, root, [(suffix, data)])), None
    if kind == "crafted_png":
        return str(_image_folder(rng, root, [(".png", crafted_png(rng)) for _ in range(rng.randrange(1, 4))])), None
    if kind == "damaged_image":
        return str(_image_folder(rng, root, [damaged_image(rng) for _ in range(rng.randrange(1, 4))])), None
    if kind == "crafted_npy":
        (root / "f.npy").write_bytes(crafted_npy(rng))
        return str(root / "f.npy"), None
    if kind == "extreme_npy":
        np.save(root / "f.npy", extreme_array(rng, "x"))
        return str(root / "f.npy"), None
    if kind == "crafted_npz":
        (root / "f.npz").write_bytes(crafted_npz(rng))
        return str(root / "f.npz"), None
    if kind == "csv":
        (root / "f.csv").write_bytes(crafted_csv(rng))
        return str(root / "f.csv"), None
    if kind == "csv_pair":
        (root / "set").mkdir()
        (root / "set" / "mnist_train.csv").write_bytes(crafted_csv(rng))
        (root / "set" / "mnist_test.csv").write_bytes(crafted_csv(rng))
        return str(root / "set"), None
    if kind == "idx":
        (root / "set").mkdir()
        for name in ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
                     "t10k-labels-idx1-ubyte"):
            (root / "set" / name).write_bytes(crafted_idx(rng, "images" in name))
        return str(root / "set"), None
    if kind == "cifar":
        names = [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch", "batches.meta"]
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w:gz") as tar:
            for name in names:
                data = hostile_pickle(rng)
                info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        (root / "cifar-10-python.tar.gz").write_bytes(buf.getvalue())
        return "cifar10", str(root)
    raise ValueError(kind)


def cases(seed: int, count: int, root: Path) -> list[tuple[str, int, str, str | None]]:
    """``count`` cases, each ``(kind, seed, spec, data_dir)``, from ``seed``; the same ones on every run."""
    out = []
    for i in range(count):
        case_seed = seed * 100_000 + i
        kind = KINDS[i % len(KINDS)]
        spec, data_dir = make_case(random.Random(case_seed), kind, root / f"case{i}")
        out.append((kind, case_seed, spec, data_dir))
    return out


# --------------------------------------------------------------------------- the runners

class Worker:
    """A Python process that loads one case at a time, under the address-space limit."""

    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", _WORKER], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=subprocess.DEVNULL, text=True, preexec_fn=_limit_memory(LOADER_MEMORY))

    def load(self, spec: str, data_dir: str | None) -> dict:
        self.proc.stdin.write(json.dumps([spec, data_dir]) + "\n")
        self.proc.stdin.flush()
        line = _read_line(self.proc, LOADER_SECONDS)
        if line is None:
            self.close()
            return {"outcome": "bug", "message": f"no answer in {LOADER_SECONDS} s (killed, or it died)"}
        return json.loads(line)

    def close(self):
        self.proc.kill()
        self.proc.wait()


def _read_line(proc: subprocess.Popen, seconds: float) -> str | None:
    import selectors

    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        if not sel.select(seconds):
            return None
    return proc.stdout.readline() or None


def run_loader_cases(seed: int, count: int, root: Path) -> tuple[list[str], dict[str, int]]:
    """Every case through one worker (a fresh one after a failure); the failures, and the outcomes counted."""
    failures, outcomes = [], {"loaded": 0, "refused": 0, "bug": 0}
    worker = Worker()
    try:
        for kind, case_seed, spec, data_dir in cases(seed, count, root):
            answer = worker.load(spec, data_dir)
            outcomes[answer["outcome"]] += 1
            if answer["outcome"] == "bug":
                failures.append(f"{kind} (make_case(random.Random({case_seed}), {kind!r}, ...)): {answer['message']}")
                worker.close()
                worker = Worker()
            elif answer["outcome"] == "refused" and "\n" in answer["message"]:
                failures.append(f"{kind} ({case_seed}): a message of several lines: {answer['message']!r}")
    finally:
        worker.close()
    return failures, outcomes


def run_cli(args: list[str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aekit", *args], capture_output=True, text=True, cwd=cwd,
                          timeout=CLI_SECONDS, preexec_fn=_limit_memory(CLI_MEMORY),
                          env={**os.environ, "OMP_NUM_THREADS": "1"})


def cli_cases(seed: int, count: int, root: Path) -> list[tuple[str, list[str]]]:
    """``count`` hostile ``aekit train`` command lines: data from the generators, or a hostile --config."""
    out = []
    for i in range(count):
        rng = random.Random(seed * 100_000 + i)
        case = root / f"cli{i}"
        if i % 3 == 2:
            case.mkdir(parents=True)
            config = rng.choice([
                b"[" * 50_000 + b"]" * 50_000,
                b'{"model": ' * 3000 + b"1" + b"}" * 3000,
                b'{"model": {"hidden": [100000000]}}',
                b'{"model": {"latent_dim": 1e30}, "train": {"seed": 1e20}}',
                b'{"train": {"epochs": 1e40}}',
                b'{"data": {"image_size": "65535x65535"}}',
                b'{"model": {"model": "\xff"}}',
            ])
            (case / "config.json").write_bytes(config)
            args = ["--config", str(case / "config.json"), "--dataset", "mnist-sample"]
        else:
            spec, data_dir = make_case(rng, rng.choice(KINDS[:-1]), case)
            args = ["--dataset", spec] + (["--data-dir", data_dir] if data_dir else [])
        out.append((f"cli{i}", ["train", *args, "--epochs", "1", "--device", "cpu", "--out", str(case / "run")]))
    return out


def check_cli(seed: int, count: int, root: Path) -> list[str]:
    """Each command ends with exit 0, or with one ``error:`` line last on stderr, a documented exit code
    (2: the input; a set too small to split is the input's fault too, not a divergence) and no traceback.

    Lines before the error are the loader's notices (files skipped, images resized).
    """
    failures = []
    for name, args in cli_cases(seed, count, root):
        res = run_cli(args, root)
        errors = [line for line in res.stderr.splitlines() if line.startswith("aekit train: error:")]
        if res.returncode == 0 and not errors and "Traceback" not in res.stderr:
            continue
        one_line = len(errors) == 1 and res.stderr.strip().splitlines()[-1] == errors[0]
        if res.returncode != 2 or "Traceback" in res.stderr or not one_line:
            failures.append(f"{name} {args}: exit {res.returncode}: {res.stderr[-2000:]}")
    return failures


# --------------------------------------------------------------------------- the tests

def test_the_generators_are_reproducible(tmp_path):
    first = [Path(spec).read_bytes() if Path(spec).is_file() else None
             for _, _, spec, _ in cases(7, len(KINDS), tmp_path / "one")]
    again = [Path(spec).read_bytes() if Path(spec).is_file() else None
             for _, _, spec, _ in cases(7, len(KINDS), tmp_path / "two")]
    assert first == again and any(first)


def test_a_fast_subset_of_hostile_inputs_loads_or_is_one_aekit_error(tmp_path, isolated_cache):
    failures, outcomes = run_loader_cases(1, 60, tmp_path)
    assert not failures, "\n\n".join(failures)
    assert outcomes["refused"] > 20  # the generators make hostile input, and most of it is refused


def test_a_few_hostile_inputs_through_aekit_train_are_one_line_and_exit_2(tmp_path, isolated_cache):
    failures = check_cli(1, 3, tmp_path)
    assert not failures, "\n\n".join(failures)


@pytest.mark.slow
def test_hundreds_of_hostile_inputs_load_or_are_one_aekit_error(tmp_path, isolated_cache):
    failures, outcomes = run_loader_cases(2, 400, tmp_path)
    assert not failures, f"{len(failures)} of 400 failed:\n\n" + "\n\n".join(failures)
    assert outcomes["loaded"] > 0 and outcomes["refused"] > 200


@pytest.mark.slow
def test_a_dozen_hostile_inputs_through_aekit_train_are_one_line_and_exit_2(tmp_path, isolated_cache):
    failures = check_cli(2, 12, tmp_path)
    assert not failures, "\n\n".join(failures)
