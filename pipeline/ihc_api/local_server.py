"""A local stand-in for the IHC API, for tests and for analysts without a key (``ihc-local-server``).

It speaks the protocol of spec §1 on 127.0.0.1: ``POST /v1/compute_ihc?conv_type_id=...`` with an
``x-api-key`` header and a JSON body ``{"customer_journeys": [...], "redistribution_parameter": {...}}``;
it answers ``{"statusCode": 200, "value": [...], "partialFailureErrors": []}`` with one row per session,
values rounded to 4 decimals, each request normalised on its own (as the real API does).

Answers where the real API's behaviour is unknown (spec [OPEN]) — our choices:
- over a limit (more than ``max_journeys`` journeys or ``max_sessions`` sessions in one request):
  **400** with a message naming the limit (the docs list 400 as "invalid input");
- missing ``conv_type_id``, a body that is not a JSON object or lacks the ``customer_journeys`` list,
  a ``redistribution_parameter`` that is not an object, or a conversion type not in the accepted set:
  **400**;
- a session record that cannot be parsed (missing field, id not a string, timestamp not
  ``'%Y-%m-%d %H:%M:%S'`` [+ ``' %z'``], flag not 0/1): **406**;
- missing or wrong key: **403**, checked first (also for GET, as observed).

Values come from a pluggable function ``fn(journeys_frame, context) -> frame of CREDIT_COLUMNS``. The
default is the offline IHC model (``get_model("ihc")``) when it is registered, otherwise a clearly
labelled **stand-in** (not the IHC model): initializer = 1 on the first session, closer = 1 on the last,
holder shared equally by the h=1 sessions of journeys with two or more sessions, ihc = the mean of the
non-empty phases (spec §2.1 with equal weights). Every answer names its value function in the
``X-Local-Ihc-Values`` header. ``redistribution_parameter`` is checked for shape and passed to the value
function in ``context``; the offline model receives it as its ``redistribution`` parameter (the stand-in
ignores it). An ``InputError`` from the value function is answered 400, any other exception 500.

Faults for tests are queued with ``inject``: each request takes the next one (``Fault.ok()`` passes).
"""

from __future__ import annotations

import json
import socket
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Callable, Optional
from urllib.parse import parse_qs, urlsplit

import numpy as np
import pandas as pd

from ..errors import InputError
from ..journey_index import CREDIT_COLUMNS, Credits, JourneyIndex
from .redact import get_logger
from .request_records import RECORD_OPTIONAL, record_problem

API_PATH = "/v1/compute_ihc"
STAND_IN_LABEL = "stand-in: first/last/equal-holder, NOT the IHC model"

ValueFn = Callable[[pd.DataFrame, dict], pd.DataFrame]


@dataclass(frozen=True)
class ValueFunction:
    label: str
    fn: ValueFn


def stand_in_values(journeys: pd.DataFrame, context: dict) -> pd.DataFrame:
    """The documented stand-in (not the IHC model); sums to 1 per conversion."""
    index = JourneyIndex.from_frame(journeys)
    initializer = index.is_first.astype(np.float64)
    closer = index.is_last.astype(np.float64)
    eligible = index.flag("holder_engagement").astype(np.float64) * (index.rows_in_journey >= 2)
    holder = index.normalise(eligible)
    has_holder = index.journey_sum(holder)[index.journey] > 0
    ihc = (initializer + holder + closer) / (2.0 + has_holder)
    return Credits(ihc=ihc, initializer=initializer, holder=holder, closer=closer).to_frame(index)


def default_value_function(model_params: Optional[dict] = None) -> ValueFunction:
    """The offline IHC model when registered, else the stand-in.

    ``model_params`` go to the model (e.g. ``{"profile": "challenge"}``), checked here so that a bad
    one fails at start-up; a request's ``redistribution_parameter`` is passed as the model's
    ``redistribution`` parameter when the model has one.
    """
    from ..models import available_models, get_model

    if "ihc" not in available_models():
        if model_params:
            raise InputError("model parameters need the offline IHC model, which is not installed")
        return ValueFunction(STAND_IN_LABEL, stand_in_values)
    model = get_model("ihc")
    base = dict(model_params or {})
    model.resolve_params(base)  # InputError now rather than at the first request

    def values(frame: pd.DataFrame, context: dict) -> pd.DataFrame:
        params = dict(base)
        if "redistribution" in model.defaults and context.get("redistribution_parameter") is not None:
            params["redistribution"] = context["redistribution_parameter"]
        return model.attribute(frame, params)

    shown = ", ".join(f"{k}={v}" for k, v in base.items())
    return ValueFunction(f"offline IHC model (get_model('ihc'){', ' + shown if shown else ''})", values)


@dataclass(frozen=True)
class Fault:
    """One injected misbehaviour, used by the next request that reaches the server.

    kinds: ``ok`` (none), ``status`` (answer ``status`` with ``message``, optional ``Retry-After`` and
    ``Location`` headers; ``in_body`` sends HTTP 200 with the status only in the body's ``statusCode``),
    ``drop`` (close the connection without answering), ``slow`` (wait ``seconds`` before answering
    normally), ``partial`` (206: the first ``count`` conversions fail, listed in ``partialFailureErrors`` as objects or, with
    ``error_format='string'``, as strings), ``missing_session``, ``duplicate_session``, ``bad_value``
    (an ihc of 1.5), ``string_value`` (a value sent as a string), ``sum_off`` (a conversion's ihc
    doubled), ``extra_session`` (a row for a session not sent), ``malformed_json`` (a truncated body),
    ``trickle`` (the right answer, one byte every ``seconds``: no single read ever waits long),
    ``trickle_headers`` (the same, from the status line on: the headers never complete in time).
    """

    kind: str = "ok"
    status: int = 200
    message: str = ""
    retry_after: Optional[str] = None
    seconds: float = 0.0
    count: int = 1
    error_format: str = "object"
    in_body: bool = False
    location: Optional[str] = None  # a ``Location`` header to send (a redirect status)

    @classmethod
    def ok(cls) -> "Fault":
        return cls("ok")

    @classmethod
    def http(
        cls,
        status: int,
        message: str = "",
        retry_after: Optional[float | str] = None,
        in_body: bool = False,
        location: Optional[str] = None,
    ) -> "Fault":
        ra = None if retry_after is None else str(retry_after)
        message = message or f"injected {status}"
        return cls("status", status=status, message=message, retry_after=ra, in_body=in_body, location=location)

    @classmethod
    def drop(cls) -> "Fault":
        return cls("drop")

    @classmethod
    def slow(cls, seconds: float) -> "Fault":
        return cls("slow", seconds=seconds)

    @classmethod
    def trickle(cls, seconds: float, headers: bool = False) -> "Fault":
        return cls("trickle_headers" if headers else "trickle", seconds=seconds)

    @classmethod
    def partial(
        cls, count: int = 1, message: str = "journey could not be attributed", error_format: str = "object"
    ) -> "Fault":
        return cls("partial", status=206, count=count, message=message, error_format=error_format)

    @classmethod
    def of(cls, kind: str) -> "Fault":
        return cls(kind)


@dataclass
class ReceivedRequest:
    """What the server received and answered. The key itself is never kept: only whether it matched."""

    method: str
    path: str
    conv_type_id: Optional[str]
    key_ok: bool
    header_names: list[str]
    fault: str = "ok"
    status: Optional[int] = None  # None when the connection was dropped
    journeys: Optional[pd.DataFrame] = None  # the session records, as received
    redistribution_parameter: Any = None
    answered: Optional[pd.DataFrame] = None  # the value rows sent back
    partial_failures: list = field(default_factory=list)
    message: str = ""

    @property
    def n_sessions(self) -> int:
        return 0 if self.journeys is None else len(self.journeys)

    @property
    def n_journeys(self) -> int:
        return 0 if self.journeys is None else int(self.journeys["conversion_id"].nunique())


class LocalIhcServer:
    """``with LocalIhcServer(api_key="k") as server: ... server.url ...`` (127.0.0.1, random port)."""

    def __init__(
        self,
        api_key: str = "local-key",
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        max_journeys: int = 100,
        max_sessions: int = 3000,
        conv_type_ids: Optional[set[str]] = None,
        value_function: Optional[ValueFunction | ValueFn] = None,
        decimals: Optional[int] = 4,
    ):
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the local IHC server only listens on the loopback interface")
        self.api_key = api_key
        self.host, self.port = host, port
        self.max_journeys, self.max_sessions = max_journeys, max_sessions
        self.conv_type_ids = conv_type_ids
        if value_function is None:
            value_function = default_value_function()
        elif not isinstance(value_function, ValueFunction):
            value_function = ValueFunction(getattr(value_function, "__name__", "custom"), value_function)
        self.value_function = value_function
        self.decimals = decimals
        self._faults: list[Fault] = []
        self._received: list[ReceivedRequest] = []
        self._lock = threading.Lock()
        self._stopping = threading.Event()
        self._httpd: Optional[ThreadingHTTPServer] = None
        self._thread: Optional[threading.Thread] = None

    # ---- lifecycle -----------------------------------------------------------------------------
    def start(self) -> "LocalIhcServer":
        handler = type("Handler", (_Handler,), {"owner": self})
        self._httpd = ThreadingHTTPServer((self.host, self.port), handler)
        self._httpd.daemon_threads = True
        self._httpd.block_on_close = False
        self.port = self._httpd.server_address[1]
        self._stopping.clear()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            daemon=True,
            name=f"ihc-local-server:{self.port}",
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stopping.set()
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def serve_forever(self) -> None:
        """Run in the foreground until Ctrl-C (the CLI command)."""
        if self._httpd is None:
            self.start()
        try:
            while self._thread is not None and self._thread.is_alive():
                self._thread.join(0.5)
        finally:
            self.stop()

    def __enter__(self) -> "LocalIhcServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}{API_PATH}"

    def client_config(self, conv_type_id: str = "local", **overrides):
        """An ``ApiConfig`` aimed at this server with its key; retry delays tiny (for tests)."""
        from .config import load_config

        settings = {
            "api_key": self.api_key,
            "conv_type_id": conv_type_id,
            "api_url": self.url,
            "max_journeys": self.max_journeys,
            "max_sessions": self.max_sessions,
            "backoff_base": 0.001,
            "backoff_max": 0.01,
            "max_retry_seconds": 10,
            "read_timeout": 10,
            "connect_timeout": 5,
            **overrides,
        }
        return load_config(settings, environ={}, env_file=False)

    # ---- test controls -------------------------------------------------------------------------
    def inject(self, *faults: Fault) -> None:
        with self._lock:
            self._faults.extend(faults)

    def pending_faults(self) -> int:
        with self._lock:
            return len(self._faults)

    @property
    def received(self) -> list[ReceivedRequest]:
        with self._lock:
            return list(self._received)

    def clear(self) -> None:
        with self._lock:
            self._received.clear()
            self._faults.clear()

    def _next_fault(self) -> Fault:
        with self._lock:
            return self._faults.pop(0) if self._faults else Fault.ok()

    def _record(self, request: ReceivedRequest) -> None:
        with self._lock:
            self._received.append(request)

    # ---- the protocol --------------------------------------------------------------------------
    def compute(self, records: list, context: dict) -> pd.DataFrame:
        frame = pd.DataFrame.from_records(records)
        for name in RECORD_OPTIONAL:  # 0 when absent (request_records.record_problem)
            frame[name] = frame[name].fillna(0).astype(int) if name in frame.columns else 0
        values = self.value_function.fn(frame, context)[CREDIT_COLUMNS]
        if self.decimals is not None:
            values = values.round({c: self.decimals for c in CREDIT_COLUMNS[2:]})
        return values.reset_index(drop=True)


class _BadRequest(Exception):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status
        self.message = message


class _Handler(BaseHTTPRequestHandler):
    owner: LocalIhcServer
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out in two writes: no 40 ms delayed-ACK stall
    server_version = "LocalIhcServer/1"

    def log_message(self, format: str, *args) -> None:  # noqa: A002 - the base class's signature
        get_logger().debug("local server: " + format, *args)

    def do_GET(self) -> None:
        key_ok = self.headers.get("x-api-key") == self.owner.api_key
        status = 405 if key_ok else 403
        message = "use POST" if key_ok else "Forbidden: missing or wrong x-api-key"
        self.owner._record(
            ReceivedRequest("GET", self.path, None, key_ok, list(self.headers.keys()), status=status, message=message)
        )
        self._send_json(status, {"statusCode": status, "message": message})

    def do_POST(self) -> None:
        owner = self.owner
        parts = urlsplit(self.path)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        given = parse_qs(parts.query).get("conv_type_id")
        conv_type = given[0] if given else None
        key_ok = self.headers.get("x-api-key") == owner.api_key
        request = ReceivedRequest("POST", parts.path, conv_type, key_ok, list(self.headers.keys()))
        fault = owner._next_fault()
        request.fault = fault.kind
        try:
            payload = json.loads(body) if body else None
        except (ValueError, UnicodeDecodeError):
            payload = None
        if isinstance(payload, dict) and isinstance(payload.get("customer_journeys"), list):
            try:
                request.journeys = pd.DataFrame.from_records(payload["customer_journeys"])
            except (TypeError, ValueError):
                request.journeys = None
            request.redistribution_parameter = payload.get("redistribution_parameter")
        owner._record(request)

        if parts.path != API_PATH:
            return self._answer_error(request, 404, f"no such path {parts.path}")
        if not key_ok:
            return self._answer_error(request, 403, "Forbidden: missing or wrong x-api-key")
        if fault.kind == "drop":
            request.status = None
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        if fault.kind == "status":
            headers = {"Retry-After": fault.retry_after} if fault.retry_after is not None else {}
            if fault.location is not None:
                headers["Location"] = fault.location
            http_status = 200 if fault.in_body else fault.status
            request.status, request.message = fault.status, fault.message
            return self._send_json(http_status, {"statusCode": fault.status, "message": fault.message}, headers)
        if fault.kind == "slow":
            owner._stopping.wait(fault.seconds)
        try:
            records = self._parse(payload, conv_type)
            assert isinstance(payload, dict)  # _parse refused anything else
            context = {"conv_type_id": conv_type, "redistribution_parameter": payload.get("redistribution_parameter")}
            values = owner.compute(records, context)
        except _BadRequest as bad:
            return self._answer_error(request, bad.status, bad.message)
        except InputError as exc:  # the value function refused the input (e.g. a bad redistribution)
            return self._answer_error(request, 400, str(exc))
        except Exception as exc:  # noqa: BLE001 - the value function failed: what the real API calls a 500
            get_logger().exception("local server: value function failed")
            return self._answer_error(request, 500, f"response value was None ({type(exc).__name__})")
        self._answer_values(request, fault, values)

    def _parse(self, payload: Any, conv_type: Optional[str]) -> list:
        owner = self.owner
        if not conv_type:
            raise _BadRequest(400, "query parameter conv_type_id is required")
        if owner.conv_type_ids is not None and conv_type not in owner.conv_type_ids:
            raise _BadRequest(400, f"conversion type {conv_type!r} is not trained for this account")
        if not isinstance(payload, dict):
            raise _BadRequest(400, "the body must be a JSON object")
        records = payload.get("customer_journeys")
        if not isinstance(records, list) or not records:
            raise _BadRequest(400, "customer_journeys must be a non-empty list of session records")
        redistribution = payload.get("redistribution_parameter")
        if redistribution is not None and not isinstance(redistribution, dict):
            raise _BadRequest(400, "redistribution_parameter must be an object")
        _check_records(records)
        if len(records) > owner.max_sessions:
            raise _BadRequest(400, f"too many sessions in one request: {len(records)} > {owner.max_sessions}")
        journeys = len({r["conversion_id"] for r in records})
        if journeys > owner.max_journeys:
            raise _BadRequest(400, f"too many customer journeys in one request: {journeys} > {owner.max_journeys}")
        return records

    def _answer_values(self, request: ReceivedRequest, fault: Fault, values: pd.DataFrame) -> None:
        status, partial = 200, []
        kind = fault.kind
        conversions = list(pd.unique(values["conversion_id"]))
        if kind == "partial":
            failing = conversions[: fault.count]
            values = values[~values["conversion_id"].isin(failing)]
            partial = [
                {"conversion_id": c, "message": fault.message}
                if fault.error_format == "object"
                else f"conversion {c}: {fault.message}"
                for c in failing
            ]
            status = 206
        elif kind == "missing_session":
            values = values.iloc[1:]
        elif kind == "duplicate_session":
            values = pd.concat([values, values.iloc[:1]], ignore_index=True)
        elif kind == "extra_session":
            extra = values.iloc[:1].assign(session_id="never-sent-session")
            values = pd.concat([values, extra], ignore_index=True)
        elif kind == "bad_value":
            values = values.copy()
            values.loc[values.index[0], "ihc"] = 1.5
        elif kind == "sum_off":
            values = values.copy()
            first = values["conversion_id"] == conversions[0]
            values.loc[first, "ihc"] = values.loc[first, "ihc"] * 2
        rows = json.loads(values.to_json(orient="records"))
        if kind == "string_value":
            rows[0]["holder"] = str(rows[0]["holder"])
        request.status = status
        request.answered = pd.DataFrame.from_records(rows) if rows else values.iloc[:0]
        request.partial_failures = partial
        body = {"statusCode": status, "value": rows, "partialFailureErrors": partial}
        raw = json.dumps(body).encode("utf-8")
        if kind == "malformed_json":
            raw = raw[: max(1, len(raw) // 2)]
        trickled = kind in ("trickle", "trickle_headers")
        self._send_raw(status, raw, every=fault.seconds if trickled else None, headers_too=kind == "trickle_headers")

    def _answer_error(self, request: ReceivedRequest, status: int, message: str) -> None:
        request.status, request.message = status, message
        self._send_json(status, {"statusCode": status, "message": message})

    def _send_json(self, status: int, body: dict, headers: Optional[dict] = None) -> None:
        self._send_raw(status, json.dumps(body).encode("utf-8"), headers)

    def _send_raw(
        self,
        status: int,
        raw: bytes,
        headers: Optional[dict] = None,
        every: Optional[float] = None,
        headers_too: bool = False,
    ) -> None:
        """Answer ``raw``; with ``every``, one byte of the body (``headers_too``: of the status line and
        headers as well) every ``every`` seconds, until the server stops."""
        fields = {
            "Content-Type": "application/json",
            "Content-Length": str(len(raw)),
            "X-Local-Ihc-Values": self.owner.value_function.label,
            **(headers or {}),
        }
        try:
            if headers_too:  # the status line and headers written by hand, to go out byte by byte
                head = [f"{self.protocol_version} {status} {self.responses[status][0]}"]
                head += [f"{name}: {value}" for name, value in fields.items()]
                raw = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + raw
            else:
                self.send_response(status)
                for name, value in fields.items():
                    self.send_header(name, value)
                self.end_headers()
            if every is None:
                self.wfile.write(raw)
                return
            self.wfile.flush()
            for i in range(len(raw)):
                if self.owner._stopping.wait(every):
                    return
                self.wfile.write(raw[i : i + 1])
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True  # the client gave up (a timeout test): nothing to do


def _check_records(records: list) -> None:
    """406 for the first session record that cannot be parsed (``request_records.record_problem``),
    naming it and the field: the API's status for "error in parsing a customer journey"."""
    for i, record in enumerate(records):
        problem = record_problem(record)
        if problem is None:
            continue
        kind, name, value = problem
        raise _BadRequest(
            406,
            {
                "not_object": f"customer_journeys[{i}] is not an object",
                "missing": f"customer_journeys[{i}] lacks {name}",
                "not_text": f"customer_journeys[{i}].{name} must be a non-empty string",
                "bad_timestamp": f"customer_journeys[{i}].timestamp {value!r} is not '%Y-%m-%d %H:%M:%S'",
                "not_flag": f"customer_journeys[{i}].{name} must be 0 or 1",
            }[kind],
        )
