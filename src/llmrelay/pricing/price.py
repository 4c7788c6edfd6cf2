"""``Price``: one model's prices, and what a request's tokens cost at them, exactly.

Prices are US dollars per million tokens, as providers list them; costs are integer
nano-dollars (a billionth of a dollar), as the ledger keeps them: no float ever holds money.
A price with at most three decimals costs whole nano-dollars a token, so a cost is exact; one
with more (down to six) is rounded to the nano-dollar once per request.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from functools import cache
from importlib import resources
from typing import Any

import yaml

from llmrelay.outcome import Usage

#: pico-dollars a token per dollar a million tokens
_PICO = 1_000_000
#: a dated snapshot's suffix: gpt-4o-2024-08-06, claude-sonnet-4-5-20250929
_DATED = re.compile(r"-(\d{4}-\d{2}-\d{2}|\d{8})$")


class PriceError(ValueError):
    """A price that cannot be used; the message says why."""


@dataclass(frozen=True, slots=True)
class Price:
    """Pico-dollars per token of each kind (integers: a dollar a million tokens is 10**6)."""

    input: int
    output: int
    cached_input: int
    cache_write: int

    @classmethod
    def of(cls, prices: dict[str, Any]) -> Price:
        """From dollars per million tokens: ``input`` and ``output``; ``cached_input`` and
        ``cache_write`` default to ``input``."""
        if unknown := set(prices) - {"input", "output", "cached_input", "cache_write"}:
            raise PriceError(f"unknown price {sorted(unknown)[0]!r}")
        for needed in ("input", "output"):
            if needed not in prices:
                raise PriceError(f"a price needs {needed!r}")
        picos = {kind: _picos(value, kind) for kind, value in prices.items()}
        return cls(
            input=picos["input"],
            output=picos["output"],
            cached_input=picos.get("cached_input", picos["input"]),
            cache_write=picos.get("cache_write", picos["input"]),
        )

    def cost(self, usage: Usage) -> int:
        """Nano-dollars: cached and cache-written prompt tokens at their own rates, the rest of
        the prompt at the input rate."""
        cached, written = usage.cached_tokens, usage.cache_write_tokens
        plain = max(0, usage.prompt_tokens - cached - written)
        picos = (
            plain * self.input
            + cached * self.cached_input
            + written * self.cache_write
            + usage.completion_tokens * self.output
        )
        return (picos + 500) // 1000

    def worst(self, prompt_tokens: int, output_tokens: int) -> int:
        """Nano-dollars at most, for a prompt of at most ``prompt_tokens`` (at its dearest
        rate) and an answer of at most ``output_tokens`` (rounded up)."""
        dearest = max(self.input, self.cached_input, self.cache_write)
        return (prompt_tokens * dearest + output_tokens * self.output + 999) // 1000

    @classmethod
    def dearest(cls, prices: list[Price]) -> Price:
        """Each rate at its highest among ``prices``: what a request may cost at most, before
        it is known which of them answers it."""
        return cls(
            input=max(p.input for p in prices),
            output=max(p.output for p in prices),
            cached_input=max(p.cached_input for p in prices),
            cache_write=max(p.cache_write for p in prices),
        )


FREE = Price(0, 0, 0, 0)


def usd(nanos: int) -> str:
    """Nano-dollars (0 or more) as a decimal string of dollars: exact, never a float."""
    dollars, nanos = divmod(nanos, 1_000_000_000)
    return f"{dollars}.{nanos:09d}"


def _picos(value: Any, kind: str) -> int:
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise PriceError(f"{kind}: a price is a number of dollars per million tokens")
    try:
        dollars = Decimal(str(value))
    except InvalidOperation as exc:
        raise PriceError(f"{kind}: {value!r} is not a number") from exc
    picos = dollars * _PICO
    if not dollars.is_finite() or dollars < 0 or picos != picos.to_integral_value():
        raise PriceError(f"{kind}: {value!r} is not a price with at most six decimals")
    return int(picos)


@cache
def published() -> tuple[str, dict[str, Price]]:
    """The prices shipped with llmrelay: the date they were taken, and the price of each
    model by its upstream name."""
    text = resources.files(__package__).joinpath("prices.yaml").read_text()
    table = yaml.safe_load(text)
    return str(table["as_of"]), {name: Price.of(p) for name, p in table["models"].items()}


def published_price(model: str) -> Price | None:
    """A model's published price, by its upstream name or, for a dated snapshot not listed,
    its undated name."""
    prices = published()[1]
    return prices.get(model) or prices.get(_DATED.sub("", model))
