"""``aekit presets``: list the presets, where each comes from and what it is."""

HELP = "list the presets (named setups) with their source"


def add_parser(sub) -> None:
    p = sub.add_parser("presets", help=HELP, description=HELP)
    p.set_defaults(func=run)


def run(args) -> int:
    from aekit.presets import DEFAULT_PRESET, PRESETS

    for name, entry in PRESETS.items():
        mark = " (default)" if name == DEFAULT_PRESET else ""
        print(f"{name}{mark}\n    {entry['summary']}\n    source: {entry['source']}")
    return 0
