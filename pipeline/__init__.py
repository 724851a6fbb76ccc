"""Attribution pipeline: customer journeys → attribution → channel report → CPO/ROAS.

The library behind both the command line (``python -m pipeline``) and the Streamlit dashboard.
Every capability is a plain function over a SQLite connection or a DataFrame (validation, journeys,
the models, the report, the export); the stages of ``pipeline.runner`` wrap them with their status
records through a ``status.StageBook`` (one database's stage states and unit of work) and chain them.
"""

__version__ = "0.1.0"
