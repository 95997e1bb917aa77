"""The local log of ``hypotez chat`` calls (stdlib SQLite), and ``hypotez logs`` to read it.

Each call is one row, answered or failed: the messages sent, the answer (or the error's kind
and message), the model asked, the provider that
answered, every attempt (JSON), latency, token usage, finish reason, a UTC timestamp and the
conversation it belongs to. Text is passed through :func:`~hypotez_providers.redaction.redact`
before it is stored, so a key never reaches the file. The file is ``$HYPOTEZ_LOGS_PATH``, else
``hypotez/logs.db`` in the user's data directory (``$XDG_DATA_HOME``, ``~/.local/share``).
"""

from __future__ import annotations

import json
import os
import sqlite3
import sys
from collections.abc import Iterable, Sequence
from contextlib import closing
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import click

from ..redaction import redact
from ..results import Attempt, Usage
from .output import echo, print_json

LOGS_PATH_ENV = "HYPOTEZ_LOGS_PATH"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS calls (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    conversation_id TEXT NOT NULL,
    timestamp TEXT NOT NULL,
    model TEXT NOT NULL,
    provider TEXT,
    prompt TEXT NOT NULL,
    messages TEXT NOT NULL,
    answer TEXT NOT NULL,
    attempts TEXT NOT NULL,
    latency REAL NOT NULL,
    prompt_tokens INTEGER,
    completion_tokens INTEGER,
    total_tokens INTEGER,
    finish_reason TEXT,
    outcome TEXT NOT NULL DEFAULT 'answered',
    error_kind TEXT,
    error_message TEXT
)
"""
#: Columns added after the first release, with their definitions, for logs made before them.
_ADDED = {
    "outcome": "TEXT NOT NULL DEFAULT 'answered'",
    "error_kind": "TEXT",
    "error_message": "TEXT",
}
_COLUMNS = (
    "id, conversation_id, timestamp, model, provider, prompt, messages, answer, attempts, "
    "latency, prompt_tokens, completion_tokens, total_tokens, finish_reason, outcome, "
    "error_kind, error_message"
)


def logs_path() -> Path:
    """``$HYPOTEZ_LOGS_PATH``, else ``hypotez/logs.db`` in the platform's user data directory."""
    if os.environ.get(LOGS_PATH_ENV):
        return Path(os.environ[LOGS_PATH_ENV]).expanduser()
    if sys.platform == "win32":
        root = Path(os.environ.get("LOCALAPPDATA") or Path.home() / "AppData" / "Local")
    elif sys.platform == "darwin":
        root = Path.home() / "Library" / "Application Support"
    else:
        root = Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share")
    return root / "hypotez" / "logs.db"


@dataclass(frozen=True)
class LoggedCall:
    """One chat call as it is recorded (text already redacted)."""

    conversation_id: str
    model: str
    provider: str | None
    prompt: str
    messages: list[dict[str, Any]]
    answer: str
    attempts: Sequence[Attempt]
    latency: float
    usage: Usage | None
    finish_reason: str | None
    #: ``"answered"``, or ``"failed"`` with the error's class name and message.
    outcome: str = "answered"
    error_kind: str | None = None
    error_message: str | None = None


def _prepare(database: sqlite3.Connection) -> None:
    """Create the table, or add the columns a log written by an older version lacks."""
    database.execute(_SCHEMA)
    present = {row[1] for row in database.execute("PRAGMA table_info(calls)")}
    for name, definition in _ADDED.items():
        if name not in present:
            database.execute(f"ALTER TABLE calls ADD COLUMN {name} {definition}")


def record(call: LoggedCall, secrets: Iterable[str | None] = ()) -> None:
    """Append ``call`` to the log, every text field redacted of ``secrets`` and known keys."""
    secrets = tuple(secrets)
    path = logs_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    attempts = [attempt.model_dump(mode="json") for attempt in call.attempts]
    usage = call.usage
    row = (
        call.conversation_id,
        datetime.now(timezone.utc).isoformat(timespec="seconds"),
        redact(call.model, secrets),
        call.provider,
        redact(call.prompt, secrets),
        redact(json.dumps(call.messages, ensure_ascii=False), secrets),
        redact(call.answer, secrets),
        redact(json.dumps(attempts, ensure_ascii=False), secrets),
        call.latency,
        usage.prompt_tokens if usage else None,
        usage.completion_tokens if usage else None,
        usage.total_tokens if usage else None,
        call.finish_reason,
        call.outcome,
        call.error_kind,
        None if call.error_message is None else redact(call.error_message, secrets),
    )
    with closing(sqlite3.connect(path)) as database, database:
        _prepare(database)
        database.execute(
            f"INSERT INTO calls ({_COLUMNS.removeprefix('id, ')}) "
            f"VALUES ({', '.join('?' * len(row))})",
            row,
        )


def recent(
    count: int, conversation_id: str | None = None, *, answered_only: bool = False
) -> list[dict[str, Any]]:
    """The last ``count`` calls (of one conversation, if given), oldest first, as dicts.

    ``answered_only`` leaves out failed calls (a conversation carries on from answers only).
    """
    path = logs_path()
    if not path.exists():
        return []
    conditions: list[str] = []
    parameters: list[Any] = []
    if conversation_id:
        conditions.append("conversation_id = ?")
        parameters.append(conversation_id)
    if answered_only:
        conditions.append("outcome = 'answered'")
    where = f"WHERE {' AND '.join(conditions)}" if conditions else ""
    with closing(sqlite3.connect(path)) as database, database:
        database.row_factory = sqlite3.Row
        _prepare(database)
        rows = database.execute(
            f"SELECT {_COLUMNS} FROM calls {where} ORDER BY id DESC LIMIT ?",
            [*parameters, count],
        ).fetchall()
    calls = []
    for row in reversed(rows):
        call = dict(row)
        call["messages"] = json.loads(call["messages"])
        call["attempts"] = json.loads(call["attempts"])
        calls.append(call)
    return calls


def conversation_so_far(conversation_id: str | None) -> tuple[str, list[dict[str, Any]]]:
    """The conversation's id and its messages with its last answer (the latest if no id).

    Raises :class:`click.UsageError` when there is no such conversation in the log.
    """
    last = recent(1, conversation_id, answered_only=True)
    if not last:
        wanted = f"conversation {conversation_id!r}" if conversation_id else "a conversation"
        raise click.UsageError(f"no {wanted} in the log ({logs_path()}) to continue")
    call = last[0]
    messages = [*call["messages"], {"role": "assistant", "content": call["answer"]}]
    return call["conversation_id"], messages


def register(cli: click.Group) -> None:
    """Add ``logs`` to ``cli``."""
    cli.add_command(logs)


@click.group(invoke_without_command=True, epilog="Example: hypotez logs -n 10 --json")
@click.option(
    "-n",
    "count",
    type=click.IntRange(min=1),
    default=3,
    show_default=True,
    help="How many of the latest calls.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.pass_context
def logs(context: click.Context, count: int, as_json: bool) -> None:
    """Show the latest chat calls recorded in the local log, oldest first."""
    if context.invoked_subcommand is not None:
        return
    calls = recent(count)
    if as_json:
        print_json(calls)
        return
    for call in calls:
        failed = call["outcome"] == "failed"
        echo(
            f"# {call['timestamp']}  {call['model']}  {call['provider'] or '-'}  "
            f"conversation {call['conversation_id']}" + ("  FAILED" if failed else "")
        )
        echo()
        echo(call["prompt"])
        echo()
        echo(f"failed: {call['error_kind']}: {call['error_message']}" if failed else call["answer"])
        echo()


@logs.command(name="path")
def path_command() -> None:
    """Print the log file's path."""
    echo(str(logs_path()))
