"""``aekit models``: list the registered models."""

HELP = "list the registered models"


def add_parser(sub) -> None:
    p = sub.add_parser("models", help=HELP, description=HELP)
    p.set_defaults(func=run)


def run(args) -> int:
    from aekit.models import get_model_class, list_models

    width = max(map(len, list_models()))
    for name in list_models():
        print(f"{name:<{width}}  {get_model_class(name).summary}")
    return 0
