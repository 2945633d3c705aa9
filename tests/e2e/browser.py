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


def check_layout(page: Any, name: str, problems: list[str]) -> None:
    """At 375 and 1280 px, light and dark: no sideways scroll and nothing serious for axe
    (each problem appended to ``problems``); screenshots in test-artifacts/. Leaves the page
    at 1280 px, light."""
    ARTIFACTS.mkdir(exist_ok=True)
    for width in (375, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        overflow = page.evaluate("() => document.documentElement.scrollWidth - innerWidth")
        if overflow > 0:
            problems.append(f"{name} {width}px: {overflow}px wider than the window")
        for scheme in ("light", "dark"):
            page.emulate_media(color_scheme=scheme)
            page.screenshot(path=str(ARTIFACTS / f"{name}-{width}-{scheme}.png"), full_page=True)
            problems.extend(f"{name} {width}px {scheme}: {found}"
                            for found in axe_violations(page))
    page.set_viewport_size({"width": 1280, "height": 900})
    page.emulate_media(color_scheme="light")
