"""Random parts of the ids llmrelay makes (requests, chat completions, responses, messages).

They must be unique, not secret: who may read a stored response is checked against its key, not
left to its id being unguessable. So they come from one generator seeded by the OS, not from the
OS each time: ``secrets`` is a system call a draw, and a Responses API request makes several.
"""

from __future__ import annotations

import base64
import os
import random

_random = random.Random(os.urandom(32))
#: base64's two signs as letters: ids of letters and digits alone, as OpenAI's and Anthropic's
_LETTERS_ONLY = str.maketrans("-_", "xy")


def random_hex(digits: int) -> str:
    return f"{_random.getrandbits(digits * 4):0{digits}x}"


def random_text(length: int) -> str:
    """Letters and digits (``random.choices`` of an alphabet took ten times as long)."""
    drawn = _random.randbytes(length * 3 // 4 + 3)
    return base64.urlsafe_b64encode(drawn).decode()[:length].translate(_LETTERS_ONLY)
