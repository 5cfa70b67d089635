"""From what a user gives (a preset, a config file, flags) to one validated :class:`RunConfig`.

This sits above both :mod:`aekit.config` (dataclasses and rules) and the models (whose
configs come from the torch-free :mod:`aekit.models.configs`), so config flows one
way: ``build_config`` -> ``RunConfig`` -> ``create_model(config.model)``, validated
once, here.

Flat overrides (``epochs=3``, ``latent_dim=2``) name a field without its section; every
field name belongs to exactly one section (a test holds this), so the lookup is never
a guess.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aekit import limits
from aekit.config import (
    SECTIONS,
    DataConfig,
    ModelConfig,
    RunConfig,
    TrainConfig,
    build_section,
    check_sections,
    field_names,
)
from aekit.errors import ConfigError
from aekit.models.configs import MODEL_CONFIGS, get_config_class
from aekit.presets import AUTO_PRESET, DEFAULT_PRESET, get_preset


def build_config(preset: str | None = None, config: str | Path | dict | RunConfig | None = None,
                 **overrides) -> RunConfig:
    """Resolve preset < config file < overrides into a validated :class:`RunConfig`.

    ``config`` is a path to a JSON file (a run's ``config.json``), a dict of the same
    shape, or a ``RunConfig``; without one, ``preset`` (default ``classic-3d-tanh``)
    is the base. ``overrides`` are flat field names: ``build_config(epochs=3, latent_dim=2)``.
    """
    if preset is not None and config is not None:
        raise ConfigError("preset: give a preset or a config file, not both")
    limits.check_environment()  # a limit set wrongly stops here, not in the middle of a run
    if isinstance(config, RunConfig):
        base = config.to_dict()
    elif isinstance(config, dict):
        base = config
    elif config is not None:
        base = load_config_file(config)
    else:
        base = get_preset(preset or DEFAULT_PRESET)
    return resolve(base, overrides)


def load_config_file(path: str | Path) -> dict[str, Any]:
    """A config file's sections as a dict (checked for shape, not yet for values)."""
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"config {path}: cannot read ({exc.strerror or exc})", params=("config",)) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"config {path}: not UTF-8 text (byte {exc.start}); a config is JSON",
                          params=("config",)) from None
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ConfigError(f"config {path}: not valid JSON (line {exc.lineno}: {exc.msg})", params=("config",)) from None
    except RecursionError:  # a config is two levels deep; thousands of brackets are not one
        raise ConfigError(f"config {path}: nested too deep to be a config", params=("config",)) from None
    if not isinstance(data, dict):
        raise ConfigError(f"config {path}: expected a JSON object with data/model/train sections", params=("config",))
    for key in data:
        if key not in ("preset", *SECTIONS, "resolved"):  # resolved: a run's record of what it used, not read back
            raise ConfigError(f"{key}: unknown section in {path}; allowed: preset, {', '.join(SECTIONS)}")
        if key in (*SECTIONS, "resolved") and not isinstance(data[key], dict):
            raise ConfigError(f"config {path}: {key}: expected an object of fields, got {data[key]!r}",
                              params=("config",))
    if not isinstance(data.get("preset"), (str, type(None))):
        raise ConfigError(f"config {path}: preset: expected a preset name or null, got {data['preset']!r}",
                          params=("config",))
    return data


def section_owners(model_config: type[ModelConfig] = ModelConfig) -> dict[str, str]:
    """Field name -> the section that has it, for the data, train and given model sections.

    A name in two sections is a bug in aekit's configs, not user input: it raises.
    """
    owners: dict[str, str] = {}
    for section, cls in (("data", DataConfig), ("model", model_config), ("train", TrainConfig)):
        for name in field_names(cls):
            if owners.setdefault(name, section) != section:
                raise RuntimeError(f"config field {name!r} is in both {owners[name]} and {section}")
    return owners


def _refuse_other_models_field(key: str, model_name: str, model_cls: type, preset: str | None = None) -> None:
    """A field of other models given for one that lacks it: one line naming the model, the models that have
    the field and the model's own fields (the CLI prints them all as flags). Under the auto preset, whose model
    is chosen only once the data loads, a pcamlp field points to the preset that names pcamlp.
    """
    having = sorted(name for name, cls in MODEL_CONFIGS.items() if key in field_names(cls))
    if not having:
        return
    own = sorted(set(field_names(model_cls)) - set(field_names(ModelConfig)))
    hint = ""
    if preset == AUTO_PRESET and "pcamlp" in having:
        hint = ("; the auto plan chooses pcamlp only once the data loads, so to set pcamlp's own settings name it: "
                "--preset pcamlp-16")
    raise ConfigError(f"{key}: model '{model_name}' has no {key} (it is a setting of {', '.join(having)}); "
                      f"its own settings: {', '.join(own) if own else 'none beyond the common ones'}{hint}",
                      params=(key, key, *own))


def resolve(base: dict[str, Any], overrides: dict[str, Any] | None = None) -> RunConfig:
    """Merge flat ``overrides`` into ``base`` (shaped like ``RunConfig.to_dict()``) and validate.

    A flat key that belongs to no section is an error naming the allowed keys. Switching
    the model keeps the fields the new model also has.
    """
    overrides = {k.replace("-", "_"): v for k, v in (overrides or {}).items() if v is not None}
    if not isinstance(base.get("preset"), (str, type(None))):
        raise ConfigError(f"preset: expected a preset name, got {base.get('preset')!r}")
    sections = {}
    for name in SECTIONS:
        section = base.get(name) or {}
        if not isinstance(section, dict):
            raise ConfigError(f"{name}: expected a mapping of fields, got {type(section).__name__}")
        sections[name] = dict(section)

    model_name = overrides.get("model", sections["model"].get("model", ModelConfig.model))
    model_cls = get_config_class(model_name)
    if "model" in overrides and overrides["model"] != sections["model"].get("model"):
        sections["model"] = {k: v for k, v in sections["model"].items() if k in field_names(model_cls)}

    owners = section_owners(model_cls)
    for key, value in overrides.items():
        if key not in owners:
            _refuse_other_models_field(key, model_name, model_cls, base.get("preset"))
            raise ConfigError(f"{key}: unknown setting; allowed: {', '.join(sorted(owners))}")
        sections[owners[key]][key] = value

    config = RunConfig(
        preset=base.get("preset"),
        data=build_section(DataConfig, sections["data"], "data"),
        model=build_section(model_cls, sections["model"], "model"),
        train=build_section(TrainConfig, sections["train"], "train"),
    )
    return check_sections(config)
