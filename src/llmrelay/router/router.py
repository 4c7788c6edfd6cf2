"""``Router``: from the model name a client asks for to the provider that answers it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from llmrelay.errors import NotFoundError
from llmrelay.providers.base import Provider


class Router:
    """Maps public model names (and aliases) to providers."""

    def __init__(self, routes: Mapping[str, Provider]) -> None:
        self._routes = dict(routes)

    def resolve(self, model: str) -> Provider:
        provider = self._routes.get(model)
        if provider is None:
            raise NotFoundError(
                f"The model `{model}` does not exist or you do not have access to it.",
            )
        return provider

    def model_names(self) -> list[str]:
        return list(self._routes)

    def providers(self) -> Iterable[Provider]:
        return {id(p): p for p in self._routes.values()}.values()

    async def aclose(self) -> None:
        for provider in self.providers():
            await provider.aclose()
