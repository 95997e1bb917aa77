"""The gateway: ``hypotez serve`` puts the router behind OpenAI- and Anthropic-compatible HTTP.

Any client that speaks OpenAI's chat completions or Anthropic's Messages API (the official
SDKs, IDEs, agents, curl) gets the router's model aliases, retries and failover. Install the
server with ``pip install 'hypotez-providers[gateway]'``; see ``docs/gateway.md``.
"""

from __future__ import annotations

from .call import GatewayCall
from .failures import Failure, failure_for

__all__ = ["Failure", "GatewayCall", "failure_for"]
