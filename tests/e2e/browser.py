"""What the browser tests share: Debian's Chromium, the real app served by uvicorn, axe-core.

``serving(asgi_app, port)`` runs an ASGI app on 127.0.0.1 in a thread for the test's length;
``launch(playwright)`` starts /usr/bin/chromium through Playwright (no ``playwright install``:
the browser is the system's); ``axe_violations(page)`` runs axe-core (installed into
tools/node_modules by ``make test``) and returns its serious and critical findings.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from tests.conftest import REPO, unavailable

__all__ = ["ARGS", "ARTIFACTS", "AXE", "AXE_RUN", "CHROMIUM", "axe_violations", "launch",
           "require_browser", "serving"]

CHROMIUM = Path("/usr/bin/chromium")
AXE = REPO / "tools" / "node_modules" / "axe-core" / "axe.min.js"
ARTIFACTS = REPO / "test-artifacts"
ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--disable-sync", "--no-first-run"]
AXE_RUN = """async () => {
  const result = await axe.run(document, {resultTypes: ["violations"]});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
                                      nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}));
}"""


def require_browser(*, axe: bool = False) -> None:
    """Skip (fail in CI) when Chromium, or axe-core if asked for, is not installed."""
    if not CHROMIUM.exists():
        unavailable(f"{CHROMIUM} is missing: the browser test needs Debian's chromium")
    if axe and not AXE.exists():
        unavailable(f"{AXE} is missing: run `make test` (npm install --prefix tools axe-core)")


@contextmanager
def serving(asgi_app: Any, port: int) -> Iterator[uvicorn.Server]:
    """``asgi_app`` on http://127.0.0.1:<port> in a daemon thread, stopped on exit."""
    server = uvicorn.Server(uvicorn.Config(asgi_app, host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            pytest.fail("uvicorn did not start")
        time.sleep(0.05)
    try:
        yield server
    finally:
        server.should_exit = True
        thread.join(10)


def launch(playwright: Any) -> Any:
    """Debian's headless Chromium, through Playwright."""
    return playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)


def axe_violations(page: Any, *, inject: bool = True) -> list[str]:
    """axe-core's serious and critical violations on the page now shown, one line each.

    axe is evaluated through the DevTools protocol, which the page's Content-Security-Policy
    does not govern, so a page can be checked without ``bypass_csp``.
    """
    if inject and not page.evaluate("() => typeof axe !== 'undefined'"):
        page.evaluate(AXE.read_text(encoding="utf-8") + "\n;0")
    return [f"{v['id']} ({v['impact']}) {v['help']} at {v['nodes']}"
            for v in page.evaluate(AXE_RUN) if v["impact"] in ("serious", "critical")]
