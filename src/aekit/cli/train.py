"""``aekit train``: train a preset, with any field overridden by a flag or a config file."""

from __future__ import annotations

import argparse
import dataclasses
import typing

from aekit.config import DataConfig, ModelConfig, TrainConfig, field_names
from aekit.presets import DEFAULT_PRESET, PRESETS

HELP = "train an autoencoder and write a run directory"


def _flag_type(tp):
    origin = typing.get_origin(tp)
    if origin is not None and type(None) in typing.get_args(tp):
        (tp,) = [a for a in typing.get_args(tp) if a is not type(None)]
    return tp if tp in (int, float) else str


def add_config_flags(parser, cls, skip=(), section: str = "", help_override: dict[str, str] | None = None) -> None:
    """One ``--kebab-case`` flag per dataclass field, help text from the field's rule (or ``help_override``)."""
    help_override = help_override or {}
    preset = PRESETS[DEFAULT_PRESET]
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if f.name in skip:
            continue
        default = preset.get(section, {}).get(f.name, f.default)
        if isinstance(default, (list, tuple)):
            default = ",".join(map(str, default)) or "none"
        text = help_override.get(f.name) or _field_help(f, default, hints[f.name] is bool)
        flag = f"--{f.name.replace('_', '-')}"
        if hints[f.name] is bool:  # a switch, --x or --no-x: a preset may turn it on, and the user off again
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                                help=text)
            continue
        parser.add_argument(flag, dest=f.name, type=_flag_type(hints[f.name]),
                            default=argparse.SUPPRESS, metavar=f.name.upper(), help=text)


def _field_help(f: dataclasses.Field, default, switch: bool) -> str:
    """A field's flag help: its rule's help, its choices, its default."""
    text = f.metadata.get("help", "")
    if f.metadata.get("choices"):
        text += f" ({'|'.join(f.metadata['choices'])})"
    return text + (f" [default: {'on' if default else 'off'}]" if switch else f" [default: {default}]")


def add_parser(sub) -> None:
    p = sub.add_parser("train", help=HELP, description=HELP + ". Flags override the preset "
                       f"(default {DEFAULT_PRESET}); defaults shown are that preset's.")
    p.add_argument("--preset", default=None, help=f"a name from 'aekit presets' [default: {DEFAULT_PRESET}]")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="a run's config.json (or any JSON with data/model/train sections) to re-run")
    p.add_argument("--out", default=None, help="run directory, new or empty (one holding other files is refused) "
                   "[default: runs/<preset>-<time>]")
    p.add_argument("--resume", default=None, metavar="RUN", help="continue a stopped run exactly where its "
                   "checkpoint left off; with --epochs N, train a finished run on to N epochs")
    p.add_argument("--nproc", type=int, default=None, metavar="N", help="train with N processes on this machine "
                   "(torchrun --nproc-per-node N -m aekit train ...: DistributedDataParallel, gloo on CPU, NCCL "
                   "on CUDA); --batch-size is the global batch")
    p.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    p.add_argument("--no-plots", dest="plots", action="store_false",
                   help="no pictures: no snapshots during training, no recon.gif, latent, loss or report.html")
    p.add_argument("--tensorboard", nargs="?", const=True, default=None, metavar="DIR",
                   help="write TensorBoard event files: losses, reconstructions, the codes in the projector "
                   "[DIR default: RUN/tensorboard; needs aekit[tensorboard]]")
    p.add_argument("--live", action="store_true",
                   help="redraw a window of reconstructions and codes as training runs (when there is a display)")
    add_config_flags(p.add_argument_group("data"), DataConfig, section="data")
    add_config_flags(p.add_argument_group("model"), ModelConfig, section="model")
    add_config_flags(p.add_argument_group("training"), TrainConfig, section="train")
    _add_model_flags(p)
    p.set_defaults(func=run)


def _add_model_flags(p) -> None:
    """Each model's own fields, grouped by the models that share them ("model 'sparse', 'vae'").

    A flag keeps its name for every model that has the field; where those models declare it
    differently (help, choices or default), its help gives each model's own text, named.
    """
    from aekit.models.configs import MODEL_CONFIGS, load_model_modules  # torch-free: --help stays fast

    load_model_modules()  # models that keep their config in their own file (none of aekit's own): imported

    shared = {f.name for f in dataclasses.fields(ModelConfig)}
    owners: dict[str, list[str]] = {}  # field -> the models that have it
    home: dict[str, type] = {}  # field -> a config class that declares it
    texts: dict[str, dict[str, list[str]]] = {}  # field -> its help text -> the models that declare it so
    for name in sorted(MODEL_CONFIGS):
        cls = MODEL_CONFIGS[name]
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if f.name not in shared:
                owners.setdefault(f.name, []).append(name)
                home.setdefault(f.name, cls)
                default = f.default
                if isinstance(default, (list, tuple)):
                    default = ",".join(map(str, default)) or "none"
                texts.setdefault(f.name, {}).setdefault(_field_help(f, default, hints[f.name] is bool), []).append(name)
    groups: dict[tuple[str, ...], list[str]] = {}
    for field_name, models in owners.items():
        groups.setdefault(tuple(models), []).append(field_name)
    for models, names in groups.items():
        group = p.add_argument_group("model " + ", ".join(f"'{m}'" for m in models))
        for field_name in names:
            cls = home[field_name]
            variants = texts[field_name]
            override = {} if len(variants) == 1 else {field_name: "; ".join(
                f"{', '.join(users)}: {text}" for text, users in variants.items())}
            add_config_flags(group, cls, skip=[n for n in field_names(cls) if n != field_name], section="model",
                             help_override=override)


def run(args) -> int:
    import os

    from aekit.api import train
    from aekit.errors import ConfigError

    if args.nproc is not None and args.nproc < 1:
        raise ConfigError(f"--nproc: must be >= 1, got {args.nproc}")
    if args.nproc and args.nproc > 1 and int(os.environ.get("WORLD_SIZE", "1")) == 1:
        from aekit.training.distributed import launch

        argv = [a for i, a in enumerate(args.argv) if a != "--nproc" and (i == 0 or args.argv[i - 1] != "--nproc")
                and not a.startswith("--nproc=")]
        return launch(args.nproc, argv[argv.index("train") + 1:])
    skip = {"command", "func", "preset", "config", "out", "quiet", "plots", "resume", "nproc", "argv", "tensorboard",
            "live"}
    overrides = {k: v for k, v in vars(args).items() if k not in skip}
    run_ = train(args.preset, config=args.config, out=args.out, resume=args.resume, verbose=not args.quiet,
                 progress=False if args.quiet else None, plots=args.plots, tensorboard=args.tensorboard,
                 live=args.live, **overrides)
    from aekit.training.distributed import env_world

    last = run_.metrics[-1] if run_.metrics else {}
    if not args.quiet and env_world().main:
        skipped = run_.dir.read_skipped()
        note = f"; {len(skipped)} unreadable data files skipped, listed in {run_.dir / run_.dir.SKIPPED}" \
            if skipped else ""
        steps = getattr(run_.config.model, "inference_steps", 0)
        own = f" (the network's own codes; `aekit eval` scores them after {steps} inference steps)" if steps else ""
        print(f"done: {len(run_.metrics)} epochs, final test loss {last.get('test_loss', float('nan')):.5f}{own}; "
              f"run saved in {run_.path}{note}")
        if report := run_.dir.file(run_.dir.REPORT):
            print(f"report: {report}")
    return 0
