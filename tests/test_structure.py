"""The package's boundaries: what loads without torch, config flowing one way, the run directory's owner."""

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from aekit.config import ModelConfig, rule
from aekit.errors import ConfigError, RunError
from aekit.models.configs import MODEL_CONFIGS
from aekit.resolve import build_config, section_owners
from aekit.rundir import RunDir

NO_TORCH = """
import sys
sys.modules["torch"] = None  # any 'import torch' now raises ImportError
"""


def _run_without_torch(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", NO_TORCH + textwrap.dedent(code)], capture_output=True,
                          text=True, timeout=120)


def test_compare_and_the_report_writer_work_with_torch_unimportable(sample_run, tmp_path):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(sample_run.path, run)
    res = _run_without_torch(f"""
        from aekit.cli.main import main
        assert main(["compare", {str(run)!r}, "--csv", {str(tmp_path / "runs.csv")!r}]) == 0
        from aekit.visualization.report import write_report
        print(write_report({str(run)!r}))
        print("torch" in sys.modules and sys.modules["torch"] is not None)
    """)
    assert res.returncode == 0, res.stderr
    lines = res.stdout.strip().splitlines()
    assert lines[-1] == "False" and lines[-2] == str(run / "report.html")
    assert "classic-3d-tanh" in (tmp_path / "runs.csv").read_text()
    assert "aekit run run" in (run / "report.html").read_text()


def test_configs_resolve_and_help_builds_without_torch():
    res = _run_without_torch("""
        from aekit.resolve import build_config
        cfg = build_config("beta-vae-conv", latent_dim=4, noise_level=None)
        print(cfg.model.beta, cfg.model.latent_dim)
        from aekit.cli.main import build_parser
        build_parser()
        from aekit.io import atomic_write_text
        from aekit.rundir import RunDir
    """)
    assert res.returncode == 0, res.stderr
    assert res.stdout.split() == ["4.0", "4"]


@pytest.mark.parametrize("name", sorted(MODEL_CONFIGS))
def test_field_names_are_unique_across_sections(name):
    owners = section_owners(MODEL_CONFIGS[name])
    assert owners["epochs"] == "train" and owners["dataset"] == "data" and owners["latent_dim"] == "model"


def test_a_field_in_two_sections_is_caught():
    @dataclasses.dataclass
    class Clashing(ModelConfig):
        seed: int = rule(0)  # also a train field

    with pytest.raises(RuntimeError, match="'seed' is in both"):
        section_owners(Clashing)


def test_registering_checks_the_config_against_the_declared_one(monkeypatch):
    from aekit.models import AutoEncoder, get_config_class, get_model_class, register_model, registry

    @dataclasses.dataclass
    class Other(ModelConfig):
        pass

    get_model_class("conv")  # the built-in is loaded
    monkeypatch.setattr(registry, "_REGISTRY", {})
    with pytest.raises(RuntimeError, match="not the ConvConfig"):
        register_model("conv")(type("Twin", (AutoEncoder,), {"config_class": Other}))
    saved = dict(MODEL_CONFIGS)
    try:
        register_model("toy")(type("Toy", (AutoEncoder,), {"config_class": Other}))  # a new name brings its config
        assert get_config_class("toy") is Other and get_model_class("toy").name == "toy"
    finally:
        MODEL_CONFIGS.clear()
        MODEL_CONFIGS.update(saved)


def test_the_model_factory_takes_the_validated_config_object():
    from aekit.models import create_model

    cfg = build_config("vae-2d", latent_dim=4)
    model = create_model(cfg.model, (1, 28, 28))
    assert model.config is cfg.model and model.latent_dim == 4
    with pytest.raises(TypeError, match="only with a model name"):
        create_model(cfg.model, (1, 28, 28), latent_dim=3)


# --------------------------------------------------------------------------- the run directory

def test_new_run_paths(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    first = RunDir.new_path(None, "x")
    assert first.parent == Path("runs") and first.name.startswith("x-")
    first.mkdir(parents=True)
    assert RunDir.new_path(None, "x") != first  # never an existing directory
    with pytest.raises(ConfigError, match="empty path"):
        RunDir.new_path("", "x")
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match="not a directory"):
        RunDir.new_path(tmp_path / "file", "x")


def test_run_dir_reads_what_it_wrote(tmp_path):
    run_dir = RunDir(tmp_path / "run")
    run_dir.path.mkdir()
    cfg = build_config("classic-2d-relu")
    run_dir.write_config(cfg)
    assert run_dir.holds_run()
    run_dir.reset_metrics()
    run_dir.append_metrics({"epoch": 1, "test_mse": 0.5})
    run_dir.append_metrics({"epoch": 2, "test_mse": 0.25})
    assert build_config(config=run_dir.read_config()) == cfg
    assert [m["epoch"] for m in run_dir.read_metrics()] == [1, 2]
    summary = run_dir.summary()
    assert (summary["preset"], summary["epochs"], summary["train_test_mse"], summary["eval"]) == \
        ("classic-2d-relu", 2, 0.25, None)


def test_run_dir_errors_name_the_file(tmp_path):
    with pytest.raises(RunError, match="no such run directory"):
        RunDir.open(tmp_path / "nope")
    with pytest.raises(RunError, match="not a run directory"):
        RunDir.open(tmp_path).read_config()
    (tmp_path / "config.json").write_text("[1, 2]")
    with pytest.raises(RunError, match=r"config.json: expected a JSON object"):
        RunDir(tmp_path).read_config()
    (tmp_path / "checkpoint.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(RunError, match="not an aekit checkpoint"):
        RunDir(tmp_path).read_checkpoint_meta()
    with pytest.raises(ConfigError, match="which: 'last'"):
        RunDir(tmp_path).checkpoint("last")
