"""Prices: exact costs in nano-dollars, cached tokens at their own rates, the published table,
and prices in the config checked at start."""

from __future__ import annotations

from pathlib import Path

import pytest

from llmrelay.app import deployment_price
from llmrelay.config import ConfigError, load_config
from llmrelay.outcome import Usage
from llmrelay.pricing.price import Price, PriceError, published, published_price


def test_a_cost_is_exact_and_prices_each_kind_of_token_at_its_rate() -> None:
    price = Price.of({"input": "2.50", "cached_input": "1.25", "output": "10", "cache_write": 3})
    usage = Usage(1000, 100, cached_tokens=600, cache_write_tokens=300)
    # 100 plain at $2.50, 600 cached at $1.25, 300 written at $3, 100 out at $10 a million
    assert price.cost(usage) == 100 * 2500 + 600 * 1250 + 300 * 3000 + 100 * 10000
    # gpt-4o-mini's cached input, $0.075 a million: 75 nano-dollars a token, exactly
    mini = published_price("gpt-4o-mini")
    assert mini is not None
    assert mini.cost(Usage(3, 0, cached_tokens=3)) == 225
    # a million requests of 1 token at $0.15 a million: no drift from rounding
    assert sum(mini.cost(Usage(1, 0)) for _ in range(1000)) * 1000 == 150_000_000


def test_cached_and_cache_write_rates_default_to_the_input_rate() -> None:
    price = Price.of({"input": 1, "output": 2})
    assert price.cost(Usage(10, 0, cached_tokens=4, cache_write_tokens=6)) == 10 * 1000


def test_a_price_with_more_than_six_decimals_or_below_zero_is_refused() -> None:
    for bad in ({"input": "0.0000001", "output": 1}, {"input": -1, "output": 1}, {"input": 1}):
        with pytest.raises(PriceError):
            Price.of(bad)  # type: ignore[arg-type]
    with pytest.raises(PriceError, match="unknown price 'inptu'"):
        Price.of({"inptu": 1, "input": 1, "output": 1})


def test_the_published_table_has_dated_snapshots_and_anthropic_cache_rates() -> None:
    as_of, prices = published()
    assert as_of.startswith("20") and len(prices) > 20
    assert published_price("gpt-4o-2024-08-06") == published_price("gpt-4o")
    sonnet = published_price("claude-sonnet-4-5-20250929")
    assert sonnet is not None and sonnet.cache_write > sonnet.input > sonnet.cached_input
    assert published_price("some-model-nobody-priced") is None


def test_a_deployments_price_comes_from_itself_the_config_or_the_table(tmp_path: Path) -> None:
    config = tmp_path / "llmrelay.yaml"
    config.write_text(
        "models:\n"
        "  - {name: mine, provider: openai, base_url: http://x, model: gpt-4o-mini}\n"
        "  - {name: mine, provider: openai, base_url: http://y, model: gpt-4o-mini,\n"
        "     price: {input: 1, output: 1}}\n"
        "  - {name: other, provider: openai, base_url: http://x, model: their-own}\n"
        "  - {name: local, provider: local}\n"
        "prices:\n"
        "  other: {input: 3, output: 4}\n"
    )
    loaded = load_config(config)
    first, second, other, local = (deployment_price(m, loaded) for m in loaded.models)
    assert first == published_price("gpt-4o-mini")
    assert second == Price.of({"input": 1, "output": 1})
    assert other == Price.of({"input": 3, "output": 4})
    assert local is not None and local.cost(Usage(100, 100)) == 0  # run here: free unless priced


def test_a_bad_price_in_the_config_is_named_at_start(tmp_path: Path) -> None:
    config = tmp_path / "llmrelay.yaml"
    config.write_text("prices:\n  gpt-4o: {input: cheap, output: 1}\n")
    with pytest.raises(ConfigError, match=r"prices.gpt-4o: input: 'cheap' is not a number"):
        load_config(config)
