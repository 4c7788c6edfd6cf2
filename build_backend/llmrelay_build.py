"""setuptools' build backend, with mypy added to the build's requirements when
``LLMRELAY_COMPILE=1`` asks for the gateway pipeline to be compiled (``setup.py``).

Without it an install needs nothing beyond setuptools and runs llmrelay from its sources.
"""

from __future__ import annotations

import os
from typing import Any

from setuptools.build_meta import *  # noqa: F403 - the backend's other hooks, as they are

MYPYC = ["mypy>=2.4.1"]


def _requires() -> list[str]:
    """What the build needs beyond setuptools. Not asked of setuptools, which would run setup.py
    to find out, and setup.py imports mypyc before mypy is there to install."""
    return MYPYC if os.environ.get("LLMRELAY_COMPILE") == "1" else []


def get_requires_for_build_wheel(config_settings: dict[str, Any] | None = None) -> list[str]:
    return _requires()


def get_requires_for_build_editable(config_settings: dict[str, Any] | None = None) -> list[str]:
    return _requires()
