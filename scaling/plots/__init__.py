"""The study's figures. Every figure has a data function that returns what is drawn (``*_data``, in
``curves_data``, ``iso_data`` and ``diagnostics_data``) and a drawing function that takes that data and a
matplotlib ``ax`` and returns the ax (``plot_*``, in ``draw_fits`` and ``draw_diagnostics``); nothing here
calls ``plt.show()`` or touches pyplot's global state. ``figures`` puts each in one call on the run database
(``iso_figure(...)`` -> ``FigureResult`` with ``plot(ax)``, ``save(path)``, ``to_dict()``), which is what
``scaling plot KIND`` renders. ``save_figure`` writes .png/.pdf/.svg byte-reproducibly.

Figure                                   data                          drawing
1 accuracy vs hours, one colour per size ``accuracy_curves_data``      ``plot_accuracy_curves``
2 the effect of image resolution (ViT-H) ``accuracy_curves_data(group_by="image_px")``  (same)
3 iso-accuracy contours over (N, D)      ``iso_accuracy_data``         ``plot_iso_accuracy``
4 backtest parity (one panel per split)  ``backtest_panels``           ``plot_backtest_splits``
  (one split)                            ``parity_data``               ``plot_backtest_parity``
5 bootstrap distribution of compute      ``compute_distribution_data`` ``plot_compute_distribution``
  each form's answer and the combined one ``combined_data``     ``plot_combined``
  coverage of intervals (reliability)    ``CalibrationResult.reliability_data`` ``plot_reliability``
6 MAE pretraining loss curves            ``loss_curves_data``          ``plot_loss_curves``
  compute-optimal frontier               ``frontier_data``             ``plot_frontier``
  IsoFLOP parabolas and N*(C) by method  ``isoflop_data``              ``plot_isoflop``

Accuracies are fractions in the data and percent on the axes. Bands are labelled with what they are: a
*confidence* band covers the mean surface (where the average run would land), a *prediction* band a new
single run (seed noise included).
"""

from __future__ import annotations

from scaling.plots.curves_data import AXIS_LABELS, Curve, CurvesData, accuracy_curves_data, metric_label
from scaling.plots.diagnostics_data import (
    BacktestPanels,
    ComputeDistribution,
    FrontierData,
    LossCurves,
    ParityData,
    backtest_panels,
    backtest_parity_frame,
    backtest_quantity,
    backtest_title,
    compute_distribution_data,
    compute_distribution_from_bootstrap,
    default_split,
    frontier_data,
    loss_curves_data,
    parity_data,
)
from scaling.plots.draw_diagnostics import (
    plot_backtest_parity,
    plot_backtest_splits,
    plot_compute_distribution,
    plot_frontier,
    plot_loss_curves,
)
from scaling.plots.draw_fits import (
    ISO_FIGSIZE,
    plot_accuracy_curves,
    plot_fit,
    plot_iso_accuracy,
    save_projection_figure,
)
from scaling.plots.figures import (
    FigureResult,
    accuracy_figure,
    backtest_figure,
    bootstrap_figure,
    frontier_figure,
    iso_figure,
    isoflop_figure,
    loss_figure,
    resolution_figure,
)
from scaling.plots.intervals_figure import CombinedFigure, combined_data, plot_combined, plot_reliability
from scaling.plots.iso_data import IsoData, PointInterval, band_interval, bootstrap_interval, iso_accuracy_data
from scaling.plots.isoflop_figure import IsoflopFigure, isoflop_data, plot_isoflop
from scaling.plots.labels import Quantity, axis_label, level_text, quantity_of
from scaling.plots.style import figure_format, new_figure, png_bytes, readable_frame, save_figure
from scaling.plots.suggest_figure import SuggestMap, plot_replay, plot_suggest_map, suggest_map_data

__all__ = [
    "AXIS_LABELS",
    "ISO_FIGSIZE",
    "BacktestPanels",
    "CombinedFigure",
    "ComputeDistribution",
    "Curve",
    "CurvesData",
    "FigureResult",
    "FrontierData",
    "IsoData",
    "IsoflopFigure",
    "LossCurves",
    "ParityData",
    "PointInterval",
    "Quantity",
    "SuggestMap",
    "accuracy_curves_data",
    "accuracy_figure",
    "axis_label",
    "backtest_figure",
    "backtest_panels",
    "backtest_parity_frame",
    "backtest_quantity",
    "backtest_title",
    "band_interval",
    "bootstrap_figure",
    "bootstrap_interval",
    "combined_data",
    "compute_distribution_data",
    "compute_distribution_from_bootstrap",
    "default_split",
    "figure_format",
    "frontier_data",
    "frontier_figure",
    "iso_accuracy_data",
    "iso_figure",
    "isoflop_data",
    "isoflop_figure",
    "level_text",
    "loss_curves_data",
    "loss_figure",
    "metric_label",
    "new_figure",
    "parity_data",
    "plot_accuracy_curves",
    "plot_backtest_parity",
    "plot_backtest_splits",
    "plot_combined",
    "plot_compute_distribution",
    "plot_fit",
    "plot_frontier",
    "plot_iso_accuracy",
    "plot_isoflop",
    "plot_loss_curves",
    "plot_reliability",
    "plot_replay",
    "plot_suggest_map",
    "png_bytes",
    "quantity_of",
    "readable_frame",
    "resolution_figure",
    "save_figure",
    "save_projection_figure",
    "suggest_map_data",
]
