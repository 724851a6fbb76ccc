"""The API drop-in: an IHC request body in, the API's response body out (spec §1.2–1.4).

``respond(body, profile)`` never raises for bad data. A request with a session record that cannot be
parsed (``request_records.record_problem``, or a date that does not exist) is answered **406** — the
spec's status for "error in parsing a customer journey", and what the local HTTP server
(``local_server``) answers for the same record — with nothing attributed and every problem listed in
``partialFailureErrors`` (``{"index", "conversion_id", "session_id", "reason"}``; the other records of a
bad journey are listed too, with the index of the bad one). A body that cannot be used at all gives 400.
"""

from __future__ import annotations

import json
from typing import Any, Optional

import numpy as np
import pandas as pd

from ..errors import InputError
from ..ihc.profile import Profile, load_profile
from ..ihc.records import OPTIONAL_FLAGS, REQUIRED, attribute_records
from ..ihc.redistribution import parse_redistribution
from ..journey_index import VALUE_COLUMNS
from .request_records import record_problem

TEXT = ["conversion_id", "session_id", "channel_label"]


def _bad_request(reason: str) -> dict:
    return {"statusCode": 400, "value": [], "partialFailureErrors": [{"index": None, "reason": reason}]}


def parse_body(body: Any) -> tuple[list, Optional[dict]]:
    """(records, redistribution_parameter) from a body: an object with ``customer_journeys`` or a list."""
    if isinstance(body, (str, bytes)):
        try:
            body = json.loads(body)
        except ValueError as exc:
            raise InputError(f"request body is not JSON: {exc}") from None
    if isinstance(body, list):
        return body, None
    if isinstance(body, dict):
        if "customer_journeys" not in body:
            raise InputError("request body has no 'customer_journeys'")
        records = body["customer_journeys"]
        if not isinstance(records, list):
            raise InputError("'customer_journeys' must be a list of session records")
        return records, body.get("redistribution_parameter")
    raise InputError("request body must be an object with 'customer_journeys' or a list of records")


def _record_problem(record: Any) -> Optional[str]:
    """The first reason a record is invalid (``request_records.record_problem``, in this face's words), or None."""
    problem = record_problem(record)
    if problem is None:
        return None
    kind, name, value = problem
    return {
        "not_object": "record is not an object",
        "missing": f"missing field '{name}'",
        "not_text": f"{name} must be a non-empty string",
        "bad_timestamp": f"timestamp {value!r} is not 'YYYY-MM-DD HH:MM:SS' (optionally ' +HHMM')",
        "not_flag": f"{name} must be 0 or 1, got {value!r}",
    }[kind]


def _valid_dates(frame: pd.DataFrame) -> np.ndarray:
    parsed = pd.to_datetime(frame["timestamp"], format="mixed", utc=True, errors="coerce")
    return parsed.notna().to_numpy()


def respond(body: Any, profile: "Profile | str | None" = "challenge") -> dict:
    """The response body the API would send for ``body`` (a parsed or raw JSON request)."""
    try:
        records, redistribution = parse_body(body)
        parse_redistribution(redistribution)
    except InputError as exc:
        return _bad_request(str(exc))
    if not records:
        return _bad_request("no customer journeys in the request")
    profile = load_profile(profile)
    problems = [_record_problem(r) for r in records]
    ok = [i for i, p in enumerate(problems) if p is None]
    frame = pd.DataFrame.from_records([records[i] for i in ok], columns=REQUIRED + OPTIONAL_FLAGS)
    frame = frame.fillna({f: 0 for f in OPTIONAL_FLAGS})
    if len(frame):
        for col in TEXT:
            frame[col] = frame[col].astype(str)
        dated = _valid_dates(frame)
        for pos in np.flatnonzero(~dated):
            problems[ok[pos]] = f"timestamp {records[ok[pos]]['timestamp']!r} is not a valid date"
    errors = []
    bad_journeys: dict[str, int] = {}
    for i, problem in enumerate(problems):
        if problem is not None:
            record = records[i] if isinstance(records[i], dict) else {}
            cid = record.get("conversion_id")
            if isinstance(cid, (str, int)) and not isinstance(cid, bool):
                bad_journeys.setdefault(str(cid), i)
            errors.append(_error(i, record, problem))
    keep = np.array(
        [problems[i] is None and str(records[i]["conversion_id"]) not in bad_journeys for i in ok], dtype=bool
    )
    for pos in np.flatnonzero(~keep):
        i = ok[pos]
        if problems[i] is None:
            first_bad = bad_journeys[str(records[i]["conversion_id"])]
            errors.append(_error(i, records[i], f"journey has an invalid record (index {first_bad})"))
    errors.sort(key=lambda e: e["index"])
    if errors:  # one unparseable record refuses the request, as the API server does
        return {"statusCode": 406, "value": [], "partialFailureErrors": errors}
    frame = frame[keep] if len(frame) else frame
    value = []
    if len(frame):
        result = attribute_records(frame, profile, round_values=True, redistribution=redistribution)
        value = _value_rows(result)
    return {"statusCode": 200, "value": value, "partialFailureErrors": []}


def _error(index: int, record: dict, reason: str) -> dict:
    return {
        "index": index,
        "conversion_id": record.get("conversion_id"),
        "session_id": record.get("session_id"),
        "reason": reason,
    }


def _value_rows(result: pd.DataFrame) -> list[dict]:
    cids = result["conversion_id"].tolist()
    sids = result["session_id"].tolist()
    columns = [result[f].to_numpy(dtype=np.float64).tolist() for f in VALUE_COLUMNS]
    return [
        {"conversion_id": c, "session_id": s, **dict(zip(VALUE_COLUMNS, vals))}
        for c, s, *vals in zip(cids, sids, *columns)
    ]
