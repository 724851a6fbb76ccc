"""Attributing journeys through the IHC API: ``attribute_via_api(conn, journeys, config)``.

1. check the configuration (key, conversion type) and the journeys before any request;
2. look up which conversions are already done for this run key (endpoint, conversion type,
   redistribution parameters) with the same content fingerprint, and skip them (unless ``force``);
3. pack the others into requests of whole journeys within both limits;
4. send each request (with retries), check the answer, and commit its results and ledger rows in one
   transaction before sending the next;
5. return the values of every attributed conversion (earlier runs' included) and the failures.

A fatal API error (400/403/406, retries exhausted, quota) or an interruption leaves every answered
chunk committed; running again sends only what is missing.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from typing import Optional, cast

import numpy as np
import pandas as pd

from ..journey_index import CREDIT_COLUMNS, JOURNEY_COLUMNS, VALUE_COLUMNS
from ..progress import Progress, ensure
from . import ledger
from .answers import check_reply, isin
from .chunking import plan_chunks
from .client import ApiClient
from .config import ApiConfig, url_for_display
from .errors import IhcApiError
from .failure import Sent, explain
from .redact import RedactingFilter, get_logger, one_line, redact
from .request_records import PreparedJourneys, prepare_journeys


@dataclass
class ApiRunSummary:
    """What a run did. ``requests`` counts HTTP attempts (retries included)."""

    run_id: str = ""
    fingerprint: str = ""
    conversions: int = 0  # in the input
    already_done: int = 0  # skipped: done (or failed) by an earlier run with the same content
    sent_conversions: int = 0
    sent_sessions: int = 0
    chunks: int = 0  # answered and committed
    chunks_total: int = 0
    requests: int = 0
    retries: int = 0
    attributed: int = 0  # conversions with credits in the result (earlier runs' included)
    failed: int = 0  # conversions not attributed (earlier runs' included)
    partial_failures: int = 0  # elements of partialFailureErrors received
    unexpected_rows: int = 0  # answer rows for conversions not sent, or unreadable
    truncated_journeys: int = 0
    truncated_sessions: int = 0
    seconds: float = 0.0
    sessions_per_second: float = 0.0

    def as_dict(self) -> dict:
        return asdict(self)

    def line(self) -> str:
        text = (
            f"IHC API: {self.attributed:,} conversions attributed, {self.failed:,} not attributed "
            f"({self.already_done:,} taken from earlier runs); {self.chunks:,}/{self.chunks_total:,} "
            f"chunks, {self.requests:,} requests, {self.retries:,} retries, "
            f"{self.sessions_per_second:,.0f} sessions/s, {self.seconds:.1f} s"
        )
        if self.truncated_journeys:
            text += f"; {self.truncated_journeys:,} journeys truncated to the session limit"
        return text


@dataclass
class ApiRunResult:
    credits: pd.DataFrame  # CREDIT_COLUMNS for every attributed conversion, canonical journey order
    failed: pd.DataFrame  # conversion_id, reason
    summary: ApiRunSummary
    truncated: pd.DataFrame = field(default_factory=pd.DataFrame)  # conversion_id, sessions, sessions_sent
    warnings: list[str] = field(default_factory=list)


def attribute_via_api(
    conn,
    journeys: pd.DataFrame,
    config: ApiConfig,
    *,
    force: bool = False,
    retry_failed: bool = False,
    progress: Optional[Progress] = None,
    client: Optional[ApiClient] = None,
) -> ApiRunResult:
    """Attribute ``journeys`` (API record format) through the IHC API, resumably.

    ``force`` re-sends every conversion; ``retry_failed`` re-sends the conversions that an earlier run
    recorded as failed (otherwise they stay failed and are reported again). ``client`` is for tests.
    Raises ``InputError`` for bad configuration or journeys (before any request) and ``IhcApiError``
    for a fatal API error (after committing every chunk answered so far).
    """
    config = config.require()
    report = ensure(progress)
    log = get_logger()
    redacting = RedactingFilter(cast(str, config.api_key))  # required above
    log.addFilter(redacting)
    started = time.monotonic()
    try:
        prepared = prepare_journeys(journeys, config.max_sessions)
        ledger.ensure_tables(conn)
        key_id = ledger.key_id_for(
            conn, url_for_display(config.api_url), cast(str, config.conv_type_id), config.redistribution_parameter
        )
        summary = ApiRunSummary(fingerprint=prepared.fingerprint(), conversions=prepared.n_conversions)
        truncated = prepared.truncated[["conversion_id", "sessions", "sessions_sent"]].reset_index(drop=True)
        summary.truncated_journeys = len(truncated)
        summary.truncated_sessions = int((truncated["sessions"] - truncated["sessions_sent"]).sum())
        warnings = []
        if len(truncated):
            warnings.append(
                f"{len(truncated):,} journey(s) longer than {config.max_sessions:,} sessions were sent as "
                f"their most recent {config.max_sessions:,} sessions; the {summary.truncated_sessions:,} "
                "earlier session(s) get 0"
            )
            log.warning(warnings[-1])

        todo, previous_credits, previous_failed = _plan_work(conn, key_id, prepared, force, retry_failed)
        summary.already_done = prepared.n_conversions - len(todo)
        chunks = plan_chunks(todo["sessions_sent"].to_numpy(), config.max_journeys, config.max_sessions)
        summary.chunks_total = len(chunks)
        run_id = ledger.start_run(
            conn, key_id, summary.fingerprint, summary.conversions, summary.already_done, len(chunks)
        )
        summary.run_id = run_id
        report(
            0,
            len(chunks),
            f"IHC API: {len(todo):,} conversions to send in {len(chunks):,} requests "
            f"({summary.already_done:,} already answered)",
        )
        new_credits, new_failed = _send_chunks(
            conn, config, prepared, todo, chunks, key_id, run_id, summary, report, client, started
        )
        credits = _ordered_credits(prepared, [previous_credits, *new_credits])
        failed = pd.concat([previous_failed, *new_failed], ignore_index=True)
        summary.attributed = int(credits["conversion_id"].nunique())
        summary.failed = len(failed)
        summary.seconds = time.monotonic() - started
        ledger.finish_run(conn, run_id, "finished", _counters(summary), summary=summary.as_dict())
        log.info(summary.line())
        report(len(chunks), len(chunks), summary.line())
        return ApiRunResult(credits, failed, summary, truncated, warnings)
    finally:
        log.removeFilter(redacting)


def _plan_work(conn, key_id: int, prepared: PreparedJourneys, force: bool, retry_failed: bool):
    """(conversions to send, stored credits of the skipped done ones, stored failures kept)."""
    conversions = prepared.conversions
    known = ledger.read_ledger(conn, key_id)
    state = conversions[["conversion_id", "h1", "h2"]].merge(known, on=["conversion_id", "h1", "h2"], how="left")
    done = (state["status"] == "done").fillna(False).to_numpy(dtype=bool, copy=True)
    failed = (state["status"] == "failed").fillna(False).to_numpy(dtype=bool, copy=True)
    if force:
        done[:] = False
        failed[:] = False
    if retry_failed:
        failed[:] = False

    previous = ledger.read_results(conn, key_id, conversions.loc[done, "conversion_id"])
    if done.any():
        # a done conversion whose stored rows do not match its sessions is sent again
        wanted = prepared.rows.loc[
            isin(prepared.rows["conversion_id"], conversions.loc[done, "conversion_id"]),
            ["conversion_id", "session_id"],
        ]
        check = wanted.merge(previous, on=["conversion_id", "session_id"], how="left", indicator=True)
        incomplete = pd.unique(check.loc[check["_merge"] == "left_only", "conversion_id"])
        if len(previous) != len(wanted) or len(incomplete):
            extra = previous.merge(wanted, how="left", indicator=True)
            incomplete = np.union1d(
                np.asarray(incomplete, dtype=object),
                pd.unique(extra.loc[extra["_merge"] == "left_only", "conversion_id"]).astype(object),
            )
            done &= ~isin(conversions["conversion_id"], incomplete)
            previous = previous[~isin(previous["conversion_id"], incomplete)]
    previous_failed = pd.DataFrame(
        {
            "conversion_id": conversions.loc[failed, "conversion_id"].astype(str).to_numpy(),
            "reason": state.loc[failed, "reason"].astype(str).to_numpy(),
        }
    )
    todo = conversions[~(done | failed)].reset_index(drop=True)
    return todo, previous, previous_failed


def _row_positions(todo: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Row numbers (into ``prepared.rows``) of the todo conversions, in order, and their offsets."""
    lengths = todo["sessions"].to_numpy(dtype=np.int64)
    starts = todo["start"].to_numpy(dtype=np.int64)
    offsets = np.concatenate(([0], np.cumsum(lengths)))
    positions = np.repeat(starts - offsets[:-1], lengths) + np.arange(offsets[-1], dtype=np.int64)
    return positions, offsets


def build_body(rows: pd.DataFrame, redistribution_parameter: Optional[dict]) -> bytes:
    """The JSON request body for the session records in ``rows`` (ids, timestamps as strings)."""
    records = rows[JOURNEY_COLUMNS].to_json(orient="records", force_ascii=False)
    body = '{"customer_journeys":' + records
    if redistribution_parameter is not None:
        body += ',"redistribution_parameter":' + json.dumps(redistribution_parameter, ensure_ascii=False)
    return (body + "}").encode("utf-8")


def _send_chunks(conn, config, prepared, todo, chunks, key_id, run_id, summary, report, client, started):
    log = get_logger()
    positions, offsets = _row_positions(todo)
    new_credits: list[pd.DataFrame] = []
    new_failed: list[pd.DataFrame] = []
    total = len(chunks)
    state = {"chunk": 0}
    sending_started = time.monotonic()

    def rate() -> float:
        elapsed = time.monotonic() - sending_started
        return summary.sent_sessions / elapsed if elapsed > 0 else 0.0

    def on_retry(attempt: int, problem: str, delay: float) -> None:
        summary.retries += 1
        report(
            state["chunk"] - 1,
            total,
            f"IHC API: request {state['chunk']} of {total}: {problem}; retry {attempt} in {delay:.0f} s",
        )

    own_client = client is None
    if own_client:
        client = ApiClient(config, on_retry=on_retry)
    else:
        client.on_retry = on_retry
    try:
        for number, (a, b) in enumerate(chunks, start=1):
            state["chunk"] = number
            chunk_conv = todo.iloc[a:b]
            chunk_rows = prepared.rows.iloc[positions[offsets[a] : offsets[b]]]
            sent_rows = chunk_rows[chunk_rows["sent"].to_numpy()]
            body = build_body(sent_rows, config.redistribution_parameter)
            before = client.requests_sent
            try:
                reply = client.post(body)
            finally:
                summary.requests += client.requests_sent - before
            checked = check_reply(sent_rows[["conversion_id", "session_id"]], reply.payload, config.secrets)
            summary.partial_failures += checked.partial_errors
            summary.unexpected_rows += checked.unexpected_rows

            status, credits, results = _chunk_outcome(chunk_conv, chunk_rows, checked)
            summary.failed += len(checked.failed)
            summary.chunks = number
            ledger.commit_chunk(
                conn,
                key_id=key_id,
                run_id=run_id,
                chunk=number,
                conversions=status,
                results=results,
                counters=_counters(summary),
            )
            new_credits.append(credits)
            if len(checked.failed):
                new_failed.append(checked.failed)
                log.warning(
                    "IHC API chunk %d: %d conversion(s) not attributed, e.g. %s",
                    number,
                    len(checked.failed),
                    redact(checked.failed["reason"].iloc[0], config.secrets),
                )
            summary.sent_conversions += len(chunk_conv)
            summary.sent_sessions += len(sent_rows)
            summary.sessions_per_second = rate()
            message = f"IHC API: {number}/{total} requests answered, {summary.sessions_per_second:,.0f} sessions/s"
            if summary.retries:
                message += f", {summary.retries} retr{'y' if summary.retries == 1 else 'ies'}"
            if summary.failed:
                message += f", {summary.failed:,} conversions failed"
            log.info(message)
            report(number, total, message)
    except IhcApiError as exc:
        summary.seconds = time.monotonic() - started
        a, b = chunks[state["chunk"] - 1] if state["chunk"] else (0, 0)
        sent = Sent(summary.chunks, total, summary.sent_conversions, len(todo), b - a)
        message = redact(explain(exc, sent, config.api_url), config.secrets)
        _record_end(conn, run_id, "failed", summary, one_line(f"{message} [{exc.detail}]", 600, config.secrets))
        error = IhcApiError(
            message, status=exc.status, retryable=exc.retryable, cause=exc.cause, attempts=exc.attempts, wait=exc.wait
        )
        error.detail, error.seconds = exc.detail, exc.seconds
        raise error from None
    except KeyboardInterrupt:
        _record_end(conn, run_id, "interrupted", summary, "interrupted")
        raise
    except BaseException as exc:
        _record_end(conn, run_id, "failed", summary, one_line(f"{type(exc).__name__}: {exc}", 300, config.secrets))
        raise
    finally:
        if own_client:
            client.close()
    return new_credits, new_failed


def _chunk_outcome(chunk_conv: pd.DataFrame, chunk_rows: pd.DataFrame, checked):
    """(ledger rows of the chunk's conversions, their credits, the rows to store).

    Credits of accepted conversions: the answer's rows plus, for truncated journeys, the sessions not
    sent with 0 in every phase.
    """
    unsent = ~chunk_rows["sent"].to_numpy()
    if unsent.any():
        keep = unsent & ~isin(chunk_rows["conversion_id"], checked.failed["conversion_id"])
        zeros = chunk_rows.loc[keep, ["conversion_id", "session_id"]].assign(
            **{column: 0.0 for column in VALUE_COLUMNS}
        )
        credits = pd.concat([checked.credits, zeros], ignore_index=True)
    else:
        zeros, credits = None, checked.credits
    sent_flag = np.ones(len(credits), dtype=np.int64)
    if zeros is not None:
        sent_flag[len(checked.credits) :] = 0
    results = credits.assign(sent=sent_flag)
    status = chunk_conv[["conversion_id", "h1", "h2", "sessions", "sessions_sent"]]
    if len(checked.failed):
        status = status.merge(checked.failed, on="conversion_id", how="left")
    else:
        status = status.assign(reason=None)
    status = status.assign(status=np.where(status["reason"].notna(), "failed", "done"))
    return status, credits, results


def _ordered_credits(prepared: PreparedJourneys, parts: list[pd.DataFrame]) -> pd.DataFrame:
    """Credits of all parts, in the canonical row order of the input."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(
            {
                "conversion_id": pd.Series([], dtype=str),
                "session_id": pd.Series([], dtype=str),
                **{c: pd.Series([], dtype=np.float64) for c in VALUE_COLUMNS},
            }
        )
    credits = pd.concat(parts, ignore_index=True)[CREDIT_COLUMNS]
    order = prepared.rows[["conversion_id", "session_id"]].assign(_order=np.arange(len(prepared.rows)))
    credits = credits.merge(order, on=["conversion_id", "session_id"], how="left")
    return credits.sort_values("_order", kind="stable").drop(columns="_order").reset_index(drop=True)


def _record_end(conn, run_id: str, status: str, summary: ApiRunSummary, message: str) -> None:
    """Mark the run as ended on the way out of an error; never mask that error with another."""
    try:
        ledger.finish_run(conn, run_id, status, _counters(summary), message=message, summary=summary.as_dict())
    except Exception:  # noqa: BLE001 - the database itself may be what failed
        get_logger().warning("IHC API: could not record the end of run %s", run_id)


def _counters(summary: ApiRunSummary) -> dict:
    return {
        "chunks": summary.chunks,
        "requests": summary.requests,
        "retries": summary.retries,
        "failed": summary.failed,
    }
