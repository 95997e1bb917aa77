"""Local fake upstreams speaking vendors' wire formats, with fault injection.

For tests, benchmarks and the demo; standard library only, and never imported by the core.
"""

from .anthropic import FakeAnthropic
from .faults import Fault, StreamEvents, cut_stream
from .ollama import FakeOllama
from .openai import FakeOpenAI
from .server import FakeUpstream, RecordedRequest, Responder, closed_port_url

__all__ = [
    "FakeAnthropic",
    "FakeOllama",
    "FakeOpenAI",
    "FakeUpstream",
    "Fault",
    "RecordedRequest",
    "Responder",
    "StreamEvents",
    "closed_port_url",
    "cut_stream",
]
