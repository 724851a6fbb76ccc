"""``ihc-api-check``: one tiny request that tells whether the key, conversion type and endpoint work.

It sends a single synthetic one-session journey (one conversion of quota), checks the answer like any
other, and reports latency and what the server said. With ``probe_limits`` it sends one more request
filled exactly to the configured limits (``max_journeys`` journeys, ``max_sessions`` sessions — that
many conversions of quota) to learn whether the account accepts them; nothing is stored either way.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Optional

import numpy as np

from .answers import check_reply
from .client import ApiClient
from .config import DOCUMENTED_MAX_JOURNEYS, DOCUMENTED_MAX_SESSIONS, ApiConfig, url_for_display
from .errors import IhcApiError
from .failure import explain
from .redact import redact
from .run import build_body
from .synthetic import make_journeys


@dataclass
class CheckReport:
    ok: bool = False
    lines: list[str] = field(default_factory=list)
    latency_ms: Optional[float] = None
    limits_accepted: Optional[bool] = None  # None when not probed
    failure: Optional[str] = None  # why the check request failed, in words (``failure.explain``)

    def verdict(self) -> str:
        """The check's result in one sentence an analyst reads (the dashboard's **Check**)."""
        if self.ok:
            return (
                f"The key and the conversion type id work: the IHC API answered one test conversion in "
                f"{self.latency_ms:,.0f} ms (that used one conversion of quota)."
            )
        if self.failure:
            return self.failure[0].upper() + self.failure[1:]
        problem = next((line.removeprefix("FAILED: ") for line in self.lines if line.startswith("FAILED")), "")
        return "The IHC API answered, but " + (problem or "the answer did not check out") + "."


def check_api(config: ApiConfig, *, probe_limits: bool = False) -> CheckReport:
    """Run the check; ``report.lines`` says what was learned (the key redacted from anything quoted)."""
    config = config.require()
    report = _run_check(config, probe_limits)
    report.lines = [redact(line, config.secrets) for line in report.lines]
    return report


def _run_check(config: ApiConfig, probe_limits: bool) -> CheckReport:
    report = CheckReport()
    say = report.lines.append
    say(f"endpoint: {url_for_display(config.api_url)}")
    say(f"conversion type: {config.conv_type_id}")
    say("redistribution parameter: " + ("sent" if config.redistribution_parameter else "none"))
    limits = f"limits: {config.max_journeys} journeys, {config.max_sessions} sessions per request"
    if config.max_journeys > DOCUMENTED_MAX_JOURNEYS or config.max_sessions > DOCUMENTED_MAX_SESSIONS:
        limits += (
            f" (above the documented {DOCUMENTED_MAX_JOURNEYS}/{DOCUMENTED_MAX_SESSIONS}: "
            "use --probe-limits to test them)"
        )
    say(limits)
    retries: list[str] = []
    with ApiClient(config, on_retry=lambda attempt, problem, delay: retries.append(problem)) as client:
        journey = make_journeys([1], prefix="ihc-api-check-", seed=1)
        rows = journey.assign(sent=True)
        try:
            t0 = time.perf_counter()
            reply = client.post(build_body(rows, config.redistribution_parameter))
            report.latency_ms = (time.perf_counter() - t0) * 1000
        except IhcApiError as exc:
            report.failure = explain(exc, api_url=config.api_url)
            say(f"FAILED: {report.failure}")
            return report
        checked = check_reply(rows[["conversion_id", "session_id"]], reply.payload, config.secrets)
        say("key: accepted")
        say(f"conversion type {config.conv_type_id!r}: accepted")
        say(
            f"latency: {report.latency_ms:.0f} ms for one session"
            + (f" after {len(retries)} retries ({retries[-1]})" if retries else "")
        )
        served_by = reply.headers.get("X-Local-Ihc-Values")
        if served_by:
            say(f"server: local stand-in server, values from {served_by}")
        if len(checked.failed):
            say(f"FAILED: the answer did not check out: {checked.failed['reason'].iloc[0]}")
            return report
        row = checked.credits.iloc[0]
        say(
            "answer: one session, initializer={:.4f} holder={:.4f} closer={:.4f} ihc={:.4f}".format(
                row["initializer"], row["holder"], row["closer"], row["ihc"]
            )
        )
        report.ok = True
        if probe_limits:
            report.limits_accepted = _probe(client, config, say)
            report.ok = bool(report.limits_accepted)
    return report


def _probe(client: ApiClient, config: ApiConfig, say) -> bool:
    journeys = min(config.max_journeys, config.max_sessions)
    sizes = np.full(journeys, config.max_sessions // journeys, dtype=np.int64)
    sizes[: config.max_sessions - int(sizes.sum())] += 1
    rows = make_journeys(sizes, prefix="ihc-api-probe-", seed=2, max_gap_hours=1.0).assign(sent=True)
    try:
        t0 = time.perf_counter()
        reply = client.post(build_body(rows, config.redistribution_parameter))
        seconds = time.perf_counter() - t0
    except IhcApiError as exc:
        say(
            f"limits NOT accepted ({journeys} journeys, {len(rows)} sessions in one request): "
            + explain(exc, api_url=config.api_url)
        )
        return False
    checked = check_reply(rows[["conversion_id", "session_id"]], reply.payload, config.secrets)
    say(
        f"limits accepted: {journeys} journeys, {len(rows)} sessions in one request answered in "
        f"{seconds:.1f} s ({len(rows) / seconds:,.0f} sessions/s)"
        + (f"; {len(checked.failed)} conversions did not check out" if len(checked.failed) else "")
    )
    return len(checked.failed) == 0
