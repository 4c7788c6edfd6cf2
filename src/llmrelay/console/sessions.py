"""``Sessions``: who logged in to the console, by a random cookie, with a token for its forms.

The cookie is HttpOnly (no script reads it), SameSite=Strict (no other site's page sends it)
and scoped to ``/ui``; every form carries the session's own token as well, checked on every
POST, so that a cross-site request fails twice over. Sessions live in this process: a restart
logs everyone out, and each instance has its own.
"""

from __future__ import annotations

import hmac
import secrets
import time
from dataclasses import dataclass

COOKIE = "llmrelay_console"
#: seconds a session lasts without use
IDLE_SECONDS = 8 * 3600


@dataclass
class Session:
    csrf: str
    expires: float


class Sessions:
    def __init__(self) -> None:
        self._sessions: dict[str, Session] = {}

    def open(self) -> tuple[str, Session]:
        self._forget_expired()
        token = secrets.token_urlsafe(32)
        session = self._sessions[token] = Session(
            secrets.token_urlsafe(24), time.monotonic() + IDLE_SECONDS
        )
        return token, session

    def find(self, token: str | None) -> Session | None:
        session = self._sessions.get(token or "")
        if session is None or session.expires < time.monotonic():
            return None
        session.expires = time.monotonic() + IDLE_SECONDS
        return session

    def close(self, token: str | None) -> None:
        self._sessions.pop(token or "", None)

    def _forget_expired(self) -> None:
        now = time.monotonic()
        for token in [t for t, s in self._sessions.items() if s.expires < now]:
            del self._sessions[token]


def same_token(given: str | None, expected: str) -> bool:
    return hmac.compare_digest((given or "").encode(), expected.encode())
