"""Hive/Com2uS CCU reporting: protocol, counters, durable spool (also the CCU history) and the reporter task."""

from ._counter import CcuCounter, SocketCounter, WebCounter
from ._metrics import CcuMetrics
from ._model import CcuProblem, CcuSampleRow, OnCcuProblem, SampleState
from ._protocol import (
    CcuOutcome,
    CcuSample,
    build_xml,
    classify,
    decode_request,
    encode_request,
    make_reqkey,
    parse_response,
)
from ._reporter import CcuReporter
from ._spool import CcuSpool

__all__ = [
    "CcuCounter",
    "CcuMetrics",
    "CcuOutcome",
    "CcuProblem",
    "CcuReporter",
    "CcuSample",
    "CcuSampleRow",
    "CcuSpool",
    "OnCcuProblem",
    "SampleState",
    "SocketCounter",
    "WebCounter",
    "build_xml",
    "classify",
    "decode_request",
    "encode_request",
    "make_reqkey",
    "parse_response",
]
