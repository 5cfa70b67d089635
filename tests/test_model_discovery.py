"""A model is one file: aekit finds it by its ``@register_model`` line, and the CLI takes models of one's own
named in ``AEKIT_MODELS``.
"""

import json
import os
import subprocess
import sys
import textwrap

import pytest

from aekit.errors import ConfigError
from aekit.models import configs
from aekit.models.configs import MODEL_CONFIGS, model_files

PLUGIN = '''
from dataclasses import dataclass

from torch import nn

from aekit.config import ModelConfig, rule
from aekit.models import AutoEncoder, ModelOutput, register_model


@dataclass
class TinyConfig(ModelConfig):
    squeeze: float = rule(1.0, min=0.0, help="tiny: factor on the code before decoding")


@register_model("tiny-plugin")
class Tiny(AutoEncoder):
    config_class = TinyConfig

    def __init__(self, config, input_shape):
        super().__init__(config, input_shape)
        self.enc = nn.Sequential(nn.Flatten(), nn.Linear(self.input_dim, config.latent_dim))
        self.dec = nn.Sequential(nn.Linear(config.latent_dim, self.input_dim), nn.Sigmoid(),
                                 nn.Unflatten(1, self.input_shape))

    def encode(self, x):
        return self.enc(x)

    def decode(self, z):
        return self.dec(self.config.squeeze * z)

    def forward(self, x):
        z = self.encode(x)
        recon_x = self.decode(z)
        return ModelOutput(recon_x, z, terms={"recon": self.reconstruction_loss(recon_x, x),
                                              "size": 1e-4 * z.pow(2).mean()})
'''


def test_every_built_in_model_is_found_in_its_file_without_importing_it():
    found = model_files()
    built_in = ("mlp", "linear", "conv", "denoising", "sparse", "contractive", "vae", "stacked", "resconv")
    assert {name: found[name] for name in built_in} == {name: f"aekit.models.{name}" for name in built_in}
    assert set(built_in) <= set(MODEL_CONFIGS)  # their configs are declared in configs.py: --help needs no torch


def test_a_file_with_its_config_inside_is_found_by_its_registration(tmp_path):
    (tmp_path / "vq.py").write_text('@register_model("vq-test")\nclass VQ: ...\n')
    (tmp_path / "notes.py").write_text('"""mentions ``@register_model`` in prose only"""\n')
    assert model_files(tmp_path, "pkg") == {"vq-test": "pkg.vq"}


def _cli(*args, env_extra=None, cwd=None):
    env = {**os.environ, **(env_extra or {})}
    return subprocess.run([sys.executable, "-m", "aekit.cli.main", *args], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600)


def test_the_cli_trains_resumes_and_lists_a_model_named_in_AEKIT_MODELS(tmp_path):
    plugin = tmp_path / "tiny_plugin.py"
    plugin.write_text(textwrap.dedent(PLUGIN))
    env = {"AEKIT_MODELS": str(plugin)}
    listed = _cli("models", env_extra=env)
    assert listed.returncode == 0 and "tiny-plugin" in listed.stdout
    helped = _cli("train", "--help", env_extra=env)
    assert "--squeeze" in helped.stdout and "tiny: factor on the code" in helped.stdout
    run = tmp_path / "run"
    common = ["--dataset", "mnist-sample", "--epochs", "1", "--batch-size", "256", "--no-plots", "--precision",
              "fp32"]
    done = _cli("train", "--model", "tiny-plugin", "--latent-dim", "4", "--squeeze", "0.5", "--out", str(run),
                *common, env_extra=env)
    assert done.returncode == 0, done.stderr
    row = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert {"train_size", "test_size"} <= row.keys()
    assert json.loads((run / "config.json").read_text())["model"]["squeeze"] == 0.5
    more = _cli("train", "--resume", str(run), "--epochs", "2", "--no-plots", env_extra=env)
    assert more.returncode == 0, more.stderr
    assert len((run / "metrics.jsonl").read_text().splitlines()) == 2
    without = _cli("train", "--resume", str(run), "--epochs", "3", "--no-plots")
    assert without.returncode == 2 and "tiny-plugin" in without.stderr and "AEKIT_MODELS" in without.stderr
    assert "Traceback" not in without.stderr


def test_an_entry_that_does_not_import_is_one_line_naming_it(monkeypatch, tmp_path):
    broken = tmp_path / "broken_models.py"
    broken.write_text("raise RuntimeError('oops')\n")
    monkeypatch.setenv("AEKIT_MODELS", f"{broken},no_such_module_xyz")
    with pytest.raises(ConfigError, match="AEKIT_MODELS: could not import .*broken_models.py.*oops"):
        configs.load_model_modules()
    monkeypatch.setenv("AEKIT_MODELS", "no_such_module_xyz")
    with pytest.raises(ConfigError, match="AEKIT_MODELS: could not import 'no_such_module_xyz'"):
        configs.load_model_modules()
