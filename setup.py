"""Compiles the modules of the gateway pipeline with mypyc; everything else is in pyproject.toml.

Every request with a stored key passes through these: keys, limits, metering and the ledger.
Compiled, they cost about a third less of the server's time (bench/shared_core.py: llmrelay /
bare requests/s 0.91 -> 0.94). The other modules stay interpreted: they cost bare and llmrelay
alike, or are off the request path. Imports outside the list are not followed (the build runs
without llmrelay's dependencies), so their types are plain objects to the compiled code.

An editable install compiles them in place, beside their sources: after changing one, install
again (``bash scripts/test`` does; the tests refuse to run on a stale build).
"""

from mypyc.build import mypycify
from setuptools import setup

COMPILED = [
    "src/llmrelay/gateway/auth.py",
    "src/llmrelay/gateway/counters.py",
    "src/llmrelay/gateway/limits.py",
    "src/llmrelay/gateway/metering.py",
    "src/llmrelay/gateway/pipeline.py",
    "src/llmrelay/store/ledger.py",
    "src/llmrelay/store/ledger_writes.py",
]

setup(ext_modules=mypycify(["--follow-imports=skip", *COMPILED], opt_level="3"))
