"""Attribution pipeline: customer journeys → attribution → channel report → CPO/ROAS.

The library behind both the command line (``python -m pipeline``) and the Streamlit dashboard.
Every stage is a plain function over a SQLite connection or a DataFrame; ``pipeline.runner`` chains them.
"""

__version__ = "0.1.0"
