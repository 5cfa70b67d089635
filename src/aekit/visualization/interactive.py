"""The code cloud as an interactive Plotly figure: rotate and zoom in 3-D, hover for label and
image index, click a class in the legend to hide or show it.

Files written from here embed plotly.js, so they open offline and load nothing.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from aekit.io import atomic_write_text
from aekit.visualization.latent import LatentView, class_colors, code_label, latent_view, model_and_scale

PLOTLY_CONFIG = {"displaylogo": False, "responsive": True, "scrollZoom": True}
SVG_MAX_POINTS = 3000  # past this a 2-D scatter is drawn with WebGL (Scattergl), which stays fluid


def interactive_codes(view: LatentView):
    """A :class:`plotly.graph_objects.Figure` of a view: one trace per class (or k-means cluster, for
    unlabeled images), so the legend toggles them.
    """
    import plotly.graph_objects as go

    colors = class_colors(len(view.class_names))
    dims = view.dims
    names = view.axis_names
    coords = "<br>".join(f"{name} = %{{{axis}:.3f}}" for name, axis in zip(names, "xyz"))
    hover = "<b>%{customdata[1]}</b><br>test image #%{customdata[0]}<br>" + coords + "<extra></extra>"
    scatter = go.Scatter3d if dims == 3 else (go.Scattergl if len(view.points) > SVG_MAX_POINTS else go.Scatter)
    rng = np.random.default_rng(0)
    traces = []
    for c, name in enumerate(view.class_names):
        mask = view.labels == c
        if not mask.any():
            continue
        p = view.points[mask]
        custom = np.stack([view.index[mask].astype(str), np.full(mask.sum(), name, dtype=object)], 1)
        xyz = {"x": p[:, 0]}
        if dims == 1:  # one row per class, jittered, as in the static plot
            xyz["y"] = c + rng.uniform(-0.3, 0.3, mask.sum())
        else:
            xyz["y"] = p[:, 1]
        if dims == 3:
            xyz["z"] = p[:, 2]
        marker = {"size": 3 if dims == 3 else 5, "color": colors[c], "opacity": 0.85}
        traces.append(scatter(**xyz, mode="markers", name=name, marker=marker, customdata=custom,
                              hovertemplate=hover))
    fig = go.Figure(traces)
    fig.update_layout(title={"text": view.title, "x": 0.5}, legend={"title": {"text": view.color_by},
                      "itemsizing": "constant"}, template="plotly_white", height=640,
                      margin={"l": 40, "r": 20, "t": 60, "b": 40})
    if dims == 3:
        fig.update_layout(scene={"xaxis_title": names[0], "yaxis_title": names[1], "zaxis_title": names[2]})
    else:
        fig.update_xaxes(title=names[0])
        if dims == 2:
            fig.update_yaxes(title=names[1])
        else:
            fig.update_yaxes(title=view.color_by, tickvals=list(range(len(view.class_names))),
                             ticktext=view.class_names)
    return fig


def interactive_latent(model, data, *, scale: str | None = None, projection: str = "pca"):
    """:func:`interactive_codes` of the test images' codes (model or :class:`aekit.Run`)."""
    model, scale = model_and_scale(model, scale)
    return interactive_codes(latent_view(model.encode_images(data.x_test, scale), data.y_test, data.class_names,
                                         projection, code=code_label(model)))


def figure_html(fig, full_html: bool = True) -> str:
    """The figure as HTML with plotly.js inline: opens from disk, requests nothing."""
    return fig.to_html(full_html=full_html, include_plotlyjs=True, include_mathjax=False, config=PLOTLY_CONFIG)


def write_figure_html(fig, path: str | Path) -> Path:
    atomic_write_text(path, figure_html(fig))
    return Path(path)
