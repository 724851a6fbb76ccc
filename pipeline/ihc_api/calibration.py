"""Calibrating the offline IHC model on a sample of the database's journeys answered by the IHC API.

``plan_calibration(conn, n, seed, config)``: the sampled conversions (``sampling.sample_conversions``)
and exactly the session records that will be sent, with the number of requests — what the CLI prints
and the dashboard shows before anything is sent.

``send_sample(conn, plan, config)``: sends the sample through ``run.attribute_via_api`` (whole
journeys within both request limits, answers committed chunk by chunk in the ``ihc_api_*`` ledger):
interrupted and run again, only the conversions not answered yet are sent. Returns the pairs.

``pairs_from_ledger(conn, config)``: the pairs of every conversion already answered in the ledger (an
earlier ``run --model ihc-api`` or calibration), sending nothing.

``fit_and_measure(pairs, ...)``: ``calibrate.fit_profile`` on all pairs plus the held-out fidelity
(``calibrate.cross_validate``) beside the base profile's. Calibration assumes answers computed
without ``redistribution_parameter`` (the fit would otherwise learn the redistribution into the curves).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Optional

import pandas as pd

from ..errors import InputError
from ..ihc import calibrate
from ..journey_index import JOURNEY_COLUMNS
from ..journeys import build_journeys
from ..progress import Progress
from ..window import Window
from . import ledger

if TYPE_CHECKING:
    from .run import ApiRunSummary
from .chunking import plan_chunks
from .config import ApiConfig, url_for_display
from .sampling import STRATUM_LABELS, sample_conversions


@dataclass
class CalibrationPlan:
    sample: pd.DataFrame  # conversion_id, sessions, stratum
    records: pd.DataFrame  # the session records to send (JOURNEY_COLUMNS), canonical order
    requests: int  # requests needed within the limits
    conversions_in_db: int  # conversions with at least one session

    def strata(self) -> pd.DataFrame:
        """Sampled conversions and sessions per journey-length stratum, shortest journeys first (in the
        sample's order, by conversion id, the page listed "1, 3, 9+, 4-5, 2, 6-8")."""
        order = {label: i for i, label in enumerate(STRATUM_LABELS)}
        out = (
            self.sample.groupby("stratum", sort=False)
            .agg(conversions=("conversion_id", "size"), sessions=("sessions", "sum"))
            .reset_index()
        )
        return out.sort_values("stratum", key=lambda s: s.map(order), kind="stable").reset_index(drop=True)

    def quota_note(self) -> str:
        """What sending the sample costs and how it was drawn, in an analyst's words."""
        *longer, last = STRATUM_LABELS[1:]  # the sampled strata ("2", "3", …, "9+"); "1" fills up
        return (
            f"Sending it uses {len(self.sample):,} conversions of the account's quota. Journeys of "
            f"{', '.join(longer)} and {last} sessions get equal shares of the sample (all of a length where "
            "there are fewer); one-session journeys only fill what is left."
        )

    def line(self) -> str:
        return (
            f"calibration sample: {len(self.sample):,} of {self.conversions_in_db:,} conversions, "
            f"{len(self.records):,} sessions in {self.requests:,} request(s)"
        )


def _check_config(config: ApiConfig) -> None:
    if config.redistribution_parameter is not None:
        raise InputError(
            "calibration needs answers computed without redistribution_parameter: unset "
            "IHC_REDISTRIBUTION_FILE / --redistribution-parameter"
        )


def plan_calibration(conn, n: int, seed: int, config: ApiConfig) -> CalibrationPlan:
    """Which conversions and sessions a calibration of ``n`` conversions sends (nothing is sent)."""
    _check_config(config)
    journeys = build_journeys(conn, Window())
    conversions = journeys.conversions
    with_sessions = int((conversions["sessions"] > 0).sum())
    sample = sample_conversions(conversions, n, seed, config.max_sessions)
    frame = journeys.frame
    ids = frame["conversion_id"].astype(str)
    records = frame.loc[ids.isin(set(sample["conversion_id"])).to_numpy(), JOURNEY_COLUMNS].reset_index(drop=True)
    records["conversion_id"] = records["conversion_id"].astype(str)
    records["session_id"] = records["session_id"].astype(str)
    chunks = plan_chunks(sample["sessions"].to_numpy(), config.max_journeys, config.max_sessions)
    return CalibrationPlan(sample, records, len(chunks), with_sessions)


def send_sample(
    conn, plan: CalibrationPlan, config: ApiConfig, progress: Optional[Progress] = None, client=None
) -> tuple[pd.DataFrame, "ApiRunSummary"]:
    """(pairs, ApiRunSummary): the plan's records with the API's answers; resumable through the ledger."""
    from .run import attribute_via_api

    _check_config(config)
    result = attribute_via_api(conn, plan.records, config, progress=progress, client=client)
    return calibrate.pairs_from_answers(plan.records, result.credits), result.summary


def pairs_from_ledger(conn, config: Optional[ApiConfig] = None) -> pd.DataFrame:
    """Pairs of every conversion answered (status done, every session sent) under one run key.

    With ``config`` the run key is its endpoint and conversion type; without, the ledger must hold
    exactly one run key without redistribution parameters.
    """
    if not ledger_has_answers(conn):
        raise InputError("this database has no IHC API answers yet: run `run --model ihc-api` or calibrate first")
    keys = pd.read_sql_query("SELECT key_id, api_url, conv_type_id, redistribution_parameter FROM ihc_api_keys", conn)
    keys = keys[keys["redistribution_parameter"].isna()]
    if config is not None and getattr(config, "conv_type_id", None):
        keys = keys[
            (keys["conv_type_id"] == config.conv_type_id) & (keys["api_url"] == url_for_display(config.api_url))
        ]
    if len(keys) != 1:
        which = "; ".join(f"{r.conv_type_id} at {r.api_url}" for r in keys.itertuples()) or "none"
        raise InputError(
            f"the ledger holds answers of {len(keys)} usable conversion type(s)/endpoint(s) ({which}); "
            "give IHC_CONV_TYPE_ID (and IHC_API_URL) to pick one"
        )
    key_id = int(keys["key_id"].iloc[0])
    done = pd.read_sql_query(
        "SELECT conversion_id FROM ihc_api_ledger WHERE key_id = ? AND status = 'done' AND sessions = sessions_sent",
        conn,
        params=(key_id,),
    )
    answers = ledger.read_results(conn, key_id, done["conversion_id"])
    journeys = build_journeys(conn, Window())
    frame = journeys.frame
    ids = frame["conversion_id"].astype(str)
    records = frame.loc[ids.isin(set(done["conversion_id"].astype(str))).to_numpy(), JOURNEY_COLUMNS]
    records = records.reset_index(drop=True).astype({"conversion_id": str, "session_id": str})
    pairs = calibrate.pairs_from_answers(records, answers)
    # a journey whose sessions changed since it was answered no longer pairs with its answer
    n_answers = answers.groupby("conversion_id").size()
    n_pairs = pairs.groupby("conversion_id").size()
    stale = n_pairs.index[n_pairs.reindex(n_pairs.index).to_numpy() != n_answers.reindex(n_pairs.index).to_numpy()]
    pairs = pairs[~pairs["conversion_id"].isin(set(stale))].reset_index(drop=True)
    if pairs.empty:
        raise InputError("no answered conversion of the ledger matches the database's current journeys")
    return pairs


def ledger_has_answers(conn) -> bool:
    row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'ihc_api_results'").fetchone()
    return bool(row) and conn.execute("SELECT 1 FROM ihc_api_results LIMIT 1").fetchone() is not None


@dataclass
class CalibrationResult:
    calibration: calibrate.Calibration
    fidelity: calibrate.CrossValidation

    def report(self) -> str:
        return "\n".join(
            ["fitted:", *(f"  {n}" for n in self.calibration.notes), "", calibrate.format_fidelity(self.fidelity)]
        )


def fit_and_measure(
    pairs: pd.DataFrame,
    *,
    name: str = "calibrated",
    base: str = "default",
    folds: int = calibrate.DEFAULT_FOLDS,
    seed: int = 0,
) -> CalibrationResult:
    """The profile fitted on every pair and its held-out fidelity (k-fold) beside ``base``'s."""
    if pairs["conversion_id"].nunique() < 2:
        raise InputError("calibration needs answers for at least two conversions")
    calibration = calibrate.fit_profile(pairs, base, name=name)
    fidelity = calibrate.cross_validate(pairs, folds=folds, seed=seed, base=base)
    return CalibrationResult(calibration, fidelity)
