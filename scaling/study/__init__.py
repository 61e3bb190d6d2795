"""The one-page study report: a study's projection, its forms side by side, their backtest, the iso map and
what to train next, in one frozen result (``scaling.report``) that writes itself as one self-contained HTML
page (``StudyReport.save_html``)."""
