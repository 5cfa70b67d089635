"""What aekit promises under faults and hostile input (docs/faults.md): it never deletes what it did not write,
a full disk or an impossible path is one line and leaves nothing behind, text that is not UTF-8 is one line or
read tolerantly, and an interrupted end of training is finished by the next command.
"""

import contextlib
import errno
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from test_resume_kill import _tmpfs

import aekit
import aekit.api.fit as fit
from aekit.cli.main import main
from aekit.errors import ConfigError, RunError
from aekit.rundir import RunDir

SMALL = ["--dataset", "mnist-sample", "--device", "cpu", "--quiet", "--model", "mlp", "--hidden", "32",
         "--latent-dim", "2", "--epochs", "1"]
DEAD = 999_999_999  # above every system's largest process id: no process has it


def _one_line(capsys, command: str) -> str:
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"aekit {command}: error: "), err
    return err[0]


def _files(root: Path) -> dict[str, tuple[bytes, float]]:
    """Every file under ``root`` with its bytes and modification time."""
    return {str(p.relative_to(root)): (p.read_bytes(), p.stat().st_mtime) for p in root.rglob("*") if p.is_file()}


def _old_file(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    hours_ago = time.time() - 7200
    os.utime(path, (hours_ago, hours_ago))
    return path


# --------------------------------------------------------------------------- never what is not ours

def test_out_on_a_folder_of_the_users_files_is_refused_and_nothing_in_it_changes(tmp_path, capsys):
    folder = tmp_path / "thesis"
    _old_file(folder / "docs" / ".thesis.tmp", "two hours of writing")  # the file the old sweep deleted
    _old_file(folder / "notes.txt", "mine")
    _old_file(folder / ".lock", "my own lock file")  # the run's lock would have truncated it
    before = _files(folder)
    assert main(["train", *SMALL, "--out", str(folder)]) == 2
    line = _one_line(capsys, "train")
    assert f"--out {folder}: holds other files (.lock, docs, notes.txt) and is not an aekit run" in line
    assert f"such as {folder / 'run'}" in line
    assert _files(folder) == before


def test_out_may_be_empty_or_hold_what_a_killed_start_left(tmp_path):
    empty = tmp_path / "empty"
    empty.mkdir()
    run = aekit.train(out=empty, dataset="mnist-sample", epochs=1, model="mlp", hidden=(16,), verbose=False,
                      progress=False, plots=False)
    assert run.dir.holds_run()
    left = tmp_path / "left"  # a start killed while loading its data: only its lock and a temp file
    _old_file(left / ".lock", f"{DEAD}\n")
    _old_file(left / f".config.json.{DEAD}.k2j4x9_a.tmp", "{")
    RunDir(left).check_new()  # no error
    with pytest.raises(ConfigError, match="already holds a run"):
        RunDir(empty).check_new()


def test_the_sweep_removes_only_temp_files_aekit_named_of_dead_writers_in_the_run_and_its_folders(tmp_path):
    run = tmp_path / "run"
    ours = [_old_file(run / f".config.json.{DEAD}.k2j4x9_a.tmp", "half"),
            _old_file(run / "recon" / f".epoch_001.png.{DEAD}.0a1b2c3d.tmp", "half"),
            _old_file(run / "export" / f".encoder.onnx.{DEAD}.k2j4x9_a.tmp", "half")]
    kept = [_old_file(run / ".thesis.tmp", "a user's"),  # no process id: not provably ours, however old
            _old_file(run / "docs" / ".thesis.tmp", "a user's"),
            _old_file(run / "docs" / f".x.png.{DEAD}.k2j4x9_a.tmp", "not in a folder of aekit's"),
            _old_file(run / f".report.html.{os.getpid()}.k2j4x9_a.tmp", "a live writer's"),
            _old_file(run / f".notes.{DEAD}.K2J4X9_A.tmp", "not as mkstemp names"),
            _old_file(run / f".notes.{DEAD}.k2j4x9_a.tmp.bak", "not a temp file")]
    (run / f".d.{DEAD}.k2j4x9_a.tmp").mkdir()  # a directory is not a temp file
    assert sorted(RunDir(run).remove_stale_temp_files()) == sorted(ours)
    assert not any(p.exists() for p in ours) and all(p.exists() for p in kept)
    assert (run / f".d.{DEAD}.k2j4x9_a.tmp").is_dir()


# --------------------------------------------------------------------------- full disk, odd paths

def _fill(disk: Path) -> Path:
    filler = disk / "filler"
    with open(filler, "wb", buffering=0) as f, contextlib.suppress(OSError):
        while True:
            f.write(b"\0" * 4096)
    return filler


def _aekit(*args) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "aekit", *map(str, args)], capture_output=True, text=True,
                          timeout=300)


@pytest.mark.slow
def test_a_full_disk_is_one_line_and_leaves_nothing_that_blocks_the_next_command(sample_run, tmp_path):
    with _tmpfs(tmp_path / "disk", "32m") as disk:
        shutil.copytree(sample_run.path, disk / "old")
        before = _files(disk / "old")
        filler = _fill(disk)
        new = _aekit("train", *SMALL, "--out", disk / "new")
        assert new.returncode == 2 and len(new.stderr.strip().splitlines()) == 1, new.stderr
        assert new.stderr.startswith(f"aekit train: error: {disk / 'new'}/") and "No space left" in new.stderr
        assert not (disk / "new").exists()
        resumed = _aekit("train", "--resume", disk / "old", "--epochs", "3", "--quiet", "--no-plots")
        assert resumed.returncode == 2 and len(resumed.stderr.strip().splitlines()) == 1, resumed.stderr
        assert "No space left" in resumed.stderr and _files(disk / "old") == before  # no .lock, no temp file
        filler.unlink()
        resumed = _aekit("train", "--resume", disk / "old", "--epochs", "3", "--quiet", "--no-plots")
        assert resumed.returncode == 0, resumed.stderr


def test_no_room_for_the_lock_file_leaves_no_directory(tmp_path, monkeypatch, capsys):
    """The same without a tmpfs: the disk is full when the lock file gets its process id."""
    def full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "pwrite", full)
    assert main(["train", *SMALL, "--out", str(tmp_path / "a" / "b" / "run")]) == 2
    assert _one_line(capsys, "train") == (f"aekit train: error: {tmp_path}/a/b/run/.lock: cannot write (No space "
                                          "left on device)")
    assert list(tmp_path.iterdir()) == []  # the parents it made are gone too


@pytest.mark.parametrize("out, needle", [
    ("x" * 256, "a part of the path is 256 bytes long"),
    ("é" * 128, "a part of the path is 256 bytes long"),  # bytes, not characters
    ("a/" * 2048 + "run", "the path is 4099 bytes long (a/a/"),
])
def test_a_path_the_system_cannot_name_is_one_line(tmp_path, monkeypatch, capsys, out, needle):
    monkeypatch.chdir(tmp_path)
    assert main(["train", *SMALL, "--out", out]) == 2
    assert needle in _one_line(capsys, "train")
    assert main(["eval", out]) == 2
    assert needle in _one_line(capsys, "eval")
    assert list(tmp_path.iterdir()) == []


def test_a_nul_byte_in_a_path_from_python_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="^out: the path holds a NUL byte"):
        aekit.train(out=tmp_path / "a\0b", dataset="mnist-sample", verbose=False)
    with pytest.raises(ConfigError, match="run directory: the path holds a NUL byte"):
        aekit.load_run("run\0")
    assert list(tmp_path.iterdir()) == []


def test_a_path_too_long_for_the_run_files_is_one_line_and_its_directories_go(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    out = "a/" * 2040 + "run"  # 4083 bytes: the directories can be made, not run/.config.json.<pid>.<random>.tmp
    assert main(["train", *SMALL, "--out", out]) == 2
    line = _one_line(capsys, "train")
    assert line.endswith("run/config.json: cannot write (File name too long)")
    assert list(tmp_path.iterdir()) == []


def test_a_new_run_that_fails_before_its_first_checkpoint_leaves_its_directory_reusable(tmp_path, monkeypatch):
    def late(*args, **kwargs):  # a config value only the model finds wrong, after config.json and snapshots
        (args[1].path / "recon").mkdir()
        (args[1].path / "recon" / "epoch_000.png").write_bytes(b"png")
        raise ConfigError("hidden: too large for this model")

    monkeypatch.setattr(fit, "_fit", late)
    made, found = tmp_path / "made", tmp_path / "found"
    found.mkdir()
    for out in (made, found):
        with pytest.raises(ConfigError, match="too large"):
            aekit.train(out=out, dataset="mnist-sample", epochs=1, verbose=False, progress=False)
    assert not made.exists() and list(found.iterdir()) == []
    monkeypatch.undo()
    assert aekit.train(out=made, dataset="mnist-sample", epochs=1, model="mlp", hidden=(16,), verbose=False,
                       progress=False, plots=False).dir.holds_run()


def test_discard_keeps_a_run_that_saved_weights(tmp_path):
    run = RunDir(tmp_path / "run")
    for name in ("config.json", "metrics.jsonl", "best.safetensors"):
        _old_file(run / name, "kept")
    assert run.discard() is False
    assert sorted(p.name for p in run.path.iterdir()) == ["best.safetensors", "config.json", "metrics.jsonl"]


# --------------------------------------------------------------------------- text that is not UTF-8

@pytest.fixture
def copied_run(sample_run, tmp_path):
    shutil.copytree(sample_run.path, tmp_path / "run")
    return tmp_path / "run"


@pytest.mark.parametrize("content, needle", [
    (b'{"preset": "classic-3d-tanh\xff"}', "is not UTF-8 text (byte 0xff at offset 27)"),
    (b'{"preset": "\\ud800"}', "holds a string that is not valid Unicode (a lone surrogate escape)"),
    (b"[" * 100_000 + b"]" * 100_000, "is nested too deep to be one aekit wrote"),
])
def test_a_config_json_that_is_not_text_is_one_line_naming_it(copied_run, capsys, content, needle):
    (copied_run / "config.json").write_bytes(content)
    assert main(["compare", str(copied_run)]) == 2
    config = copied_run / "config.json"
    assert _one_line(capsys, "compare") == f"aekit compare: error: {config}: the run config {needle}"
    with pytest.raises(RunError, match=needle.split(" (")[0]):
        RunDir(copied_run).read_config()


def test_metrics_and_skipped_lists_that_are_not_utf8_are_read_tolerantly(copied_run, capsys):
    metrics = copied_run / "metrics.jsonl"
    lines = metrics.read_bytes().splitlines(keepends=True)
    metrics.write_bytes(lines[0] + b'{"epoch": 2, "note": "\xff\xfe"}\n' + b"".join(lines[1:]))
    (copied_run / "skipped.txt").write_bytes(b"pics/caf\xe9.png\tcannot identify image file\n")
    assert main(["compare", str(copied_run)]) == 0
    assert "metrics.jsonl: skipped 1 damaged line(s) (2)" in capsys.readouterr().err
    rows = RunDir(copied_run)._metrics_file(lambda line: None)
    assert [r["epoch"] for r in rows] == [1, 2]
    assert RunDir(copied_run).read_skipped() == [("pics/caf\ufffd.png", "cannot identify image file")]
    run = aekit.load_run(copied_run)
    assert [m["epoch"] for m in run.metrics] == [1, 2]


def test_a_run_in_a_folder_whose_name_is_not_utf8_works_and_prints_its_name_as_bytes(copied_run):
    import json

    run = copied_run.rename(copied_run.parent / os.fsdecode(b"run\xff"))
    config = json.loads((run / "config.json").read_text())
    config["data"]["dataset"] = os.fsdecode(b"/data/caf\xe9")  # trained on a folder so named: kept as escapes
    (run / "config.json").write_text(json.dumps(config))
    assert RunDir(run).read_config()["data"]["dataset"] == os.fsdecode(b"/data/caf\xe9")
    env = {**os.environ, "PYTHONIOENCODING": "utf-8"}  # strict, as where the locale is UTF-8
    for command in (["compare", run], ["plot", run, "--what", "loss"]):
        res = subprocess.run([sys.executable, "-m", "aekit", *map(str, command)], capture_output=True, env=env,
                             timeout=300)
        assert res.returncode == 0, res.stderr.decode(errors="replace")
        assert b"run\xff" in res.stdout and b"Traceback" not in res.stderr


def test_a_non_utf8_eval_json_is_a_note_in_the_report_not_a_traceback(copied_run):
    from aekit.visualization.report import ReportInputs, evaluation_section, json_table_section

    (copied_run / "eval.json").write_bytes(b'{"results": {"model\xff": {}}}')
    inputs = ReportInputs.from_run_dir(copied_run)
    assert "not UTF-8 text" in evaluation_section(inputs).body
    assert "not UTF-8 text" in json_table_section("eval.json", "Evaluation")(inputs).body


# --------------------------------------------------------------------------- interrupted finishing steps

# Runs aekit with its picture drawing stopped half-way through writing the first picture file, as a kill then
# finds it: "drawing" on stdout says the moment has come.
_HANGS_IN_DRAWING = """
import sys, time
import aekit.visualization.pictures as pictures
real = pictures.atomic_write
def hang(path, write):
    def half(tmp):
        write(tmp)
        print("drawing", flush=True)
        time.sleep(600)
    return real(path, half)
pictures.atomic_write = hang
from aekit.cli.main import main
sys.exit(main(sys.argv[1:]))
"""


def _killed_while_drawing(*args) -> None:
    proc = subprocess.Popen([sys.executable, "-c", _HANGS_IN_DRAWING, *map(str, args)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "drawing", proc.stderr.read()
    finally:
        proc.kill()
        proc.communicate()


def _temp_files(run: Path) -> list[Path]:
    return [p for p in run.rglob(".*") if p.name.endswith(".tmp")]


@pytest.fixture(scope="module")
def killed_at_the_end(tmp_path_factory):
    """A run killed while it drew its end-of-training pictures: trained and saved, no report, a temp file."""
    run = tmp_path_factory.mktemp("killed") / "run"
    _killed_while_drawing("train", *SMALL, "--out", run)
    assert RunDir(run).read_checkpoint_meta()["finished"]
    assert not (run / "report.html").exists() and len(_temp_files(run)) == 1
    return run


def test_resume_finishes_a_run_killed_while_drawing_its_pictures(killed_at_the_end, tmp_path):
    run = tmp_path / "run"
    shutil.copytree(killed_at_the_end, run)
    users = _old_file(run / "docs" / ".thesis.tmp", "a user's")
    res = _aekit("train", "--resume", run)
    assert res.returncode == 0, res.stderr
    assert "already trained all its 1 epoch(s) but has no report (its end was interrupted); drawing" in res.stderr
    assert f"report: {run / 'report.html'}" in res.stdout
    assert all((run / name).is_file() for name in ("report.html", "recon.gif", "recon.png", "latent.png", "loss.png"))
    assert _temp_files(run) == [users]
    res = _aekit("train", "--resume", run)  # now there is nothing left to do
    assert res.returncode == 0 and "nothing to do" in res.stderr, res.stderr


def test_report_finishes_it_and_the_next_command_removes_an_interrupted_reports_temp_files(killed_at_the_end,
                                                                                          tmp_path):
    run = tmp_path / "run"
    shutil.copytree(killed_at_the_end, run)
    _killed_while_drawing("report", run)
    (left,) = _temp_files(run)  # the report's; it removed the training's as it began
    assert left not in _temp_files(killed_at_the_end) and not (run / "report.html").exists()
    res = _aekit("report", run)
    assert res.returncode == 0, res.stderr
    assert res.stdout.strip() == str(run / "report.html") and _temp_files(run) == []


def test_resume_draws_nothing_for_a_run_trained_without_pictures(tmp_path):
    run = tmp_path / "run"
    aekit.train(out=run, dataset="mnist-sample", epochs=1, model="mlp", hidden=(16,), verbose=False, progress=False,
                plots=False)
    notes = []
    aekit.train(resume=run, log=notes.append)  # plots on: still nothing to draw for a --no-plots run
    assert len(notes) == 1 and "nothing to do" in notes[0]
    assert not (run / "report.html").exists() and not (run / "loss.png").exists()
