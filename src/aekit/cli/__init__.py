"""The ``aekit`` command. Each command is a module here with ``add_parser`` and ``run``;
heavy libraries (torch, matplotlib, plotly) are imported inside ``run``.
"""
