"""Programs some tests run (cURL, Node, OpenSSL, bash): found, or the test skips or fails."""

from __future__ import annotations

import os
import shutil

import pytest


def need(program: str) -> str:
    """Find a program, or skip (fail when CI says so, HOOKSCOPE_REQUIRE_TOOLS=1)."""
    path = shutil.which(program)
    if path is None:
        reason = f"{program} is not installed"
        if os.environ.get("HOOKSCOPE_REQUIRE_TOOLS") == "1":
            pytest.fail(f"{reason}, and HOOKSCOPE_REQUIRE_TOOLS=1 requires it", pytrace=False)
        pytest.skip(reason)
    return path
