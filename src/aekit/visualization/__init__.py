"""Pictures of runs: image grids, reconstruction snapshots (and, later, plots).

Nothing under ``aekit.models`` or ``aekit.training`` imports this package.
"""
