"""Compiles the modules of the gateway pipeline with mypyc when ``LLMRELAY_COMPILE=1`` (as mypy
does with ``MYPY_USE_MYPYC``); everything else is in pyproject.toml.

Every request with a stored key passes through these: keys, limits, metering and the ledger.
Compiled, they cost about a third less of the server's time (``bench/shared_core.py``). The
other modules stay interpreted: they cost bare and llmrelay alike, or are off the request path.
Imports outside the list are not followed (the build runs without llmrelay's dependencies), so
their types are plain objects to the compiled code.

By default nothing is compiled, and an editable install runs its sources. A compiled editable
install builds the modules beside their sources, where they shadow them: after changing one,
install again (the tests refuse to run on a build older than its sources).
"""

import os

from setuptools import setup

COMPILED = [
    "src/llmrelay/outcome.py",
    "src/llmrelay/gateway/auth.py",
    "src/llmrelay/gateway/counters.py",
    "src/llmrelay/gateway/limits.py",
    "src/llmrelay/gateway/metering.py",
    "src/llmrelay/gateway/pipeline.py",
    "src/llmrelay/store/ledger.py",
    "src/llmrelay/store/ledger_writes.py",
]

if os.environ.get("LLMRELAY_COMPILE") == "1":
    from mypyc.build import mypycify

    setup(ext_modules=mypycify(["--follow-imports=skip", *COMPILED], opt_level="3"))
else:
    setup()
