"""`mmse dashboard`: one self-contained results page per sweep, and a local server for it.

The page is a single `index.html`: the sweep's page data (`mmse_app/page_schema.py`, built
by `mmse_app/dashboard_data.py`) as embedded JSON, plotly.js from the installed `plotly`
package and the page's own script (`dashboard_assets/*.js`, put together in `SCRIPTS`' order)
and style, all inlined, so it opens from disk with no network. `--serve` serves the page's folder on
127.0.0.1 only and rebuilds the page while the sweep runs; the open page reloads itself
when its data changed (it polls `version.json`, a few bytes).
"""

from __future__ import annotations

import functools
import hashlib
import html
import json
import platform
import re
import sys
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from http import HTTPStatus
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar

from mmse_app.dashboard_data import load_experiment, page_data
from mmse_app.page_schema import UNVERSIONED, Builder, PageData
from mmse_model.core import atomic, jsonio, outputs, storage
from mmse_model.core.errors import InputError, first_line

ASSETS = Path(__file__).with_name("dashboard_assets")
PAGE, VERSION = "index.html", "version.json"
HOST = "127.0.0.1"  # --serve listens here only
# The page's script, in the order it is put together (one scope, no build step): the data
# and its lookups, helpers, one file per view, then the start.
SCRIPTS = (
    "data.js",
    "format.js",
    "dom.js",
    "header.js",
    "estimate.js",
    "intervals.js",
    "heatmap.js",
    "comparison.js",
    "subtotal.js",
    "data_view.js",
    "tasks.js",
    "curves.js",
    "hyperparameters.js",
    "calibration.js",
    "table.js",
    "provenance.js",
    "serve.js",
    "main.js",
)


@functools.lru_cache(maxsize=1)
def _plotly() -> tuple[str, str]:
    """plotly.js from the installed plotly package, and its version."""
    from plotly.offline import get_plotlyjs, get_plotlyjs_version

    return _script_safe(get_plotlyjs()), get_plotlyjs_version()


def _script_safe(js: str) -> str:
    # Inside <script>, only `</script` ends the element: break it where it occurs (in strings).
    return re.sub(r"</(script)", r"<\\/\1", js, flags=re.IGNORECASE)


def data_version(data: PageData) -> str:
    """A digest of the page's data: equal data, equal version (who built the page, when and
    with what refresh interval is not in it)."""
    text = jsonio.dumps(data.model_dump(mode="python", exclude=set(UNVERSIONED)), compact=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def embed_json(data: PageData | dict[str, Any]) -> str:
    """JSON for a `<script type="application/json">` block (the one JSON writer's): every
    `<` written as \\u003c, so no value (a `</script>`, a `<!--`) can end the block;
    JSON.parse reads it back unchanged."""
    return jsonio.dumps(data, compact=True).replace("<", "\\u003c")


def app_script() -> str:
    """The page's script: SCRIPTS in order, in one function scope."""
    parts = [f"// --- {name}\n" + (ASSETS / name).read_text(encoding="utf-8") for name in SCRIPTS]
    return '(function () {\n"use strict";\n' + "\n".join(parts) + "\n})();\n"


def render_page(data: PageData, refresh_s: float = 5.0, built: str | None = None) -> str:
    """The whole page for one page-data document (`dashboard_data.page_data`)."""
    plotly_js, plotly_version = _plotly()
    document = data.model_copy(
        update={
            "version": data_version(data),
            "refresh_s": refresh_s,
            "builder": Builder(
                built=built or datetime.now(timezone.utc).isoformat(timespec="seconds"),
                python=platform.python_version(),
                plotlyjs=plotly_version,
            ),
        }
    )
    parts = {
        "TITLE": html.escape(f"mmse sweep {data.meta.name}"),
        "CSS": (ASSETS / "dashboard.css").read_text(encoding="utf-8"),
        "DATA": embed_json(document),
        "PLOTLY": plotly_js,
        "APP": _script_safe(app_script()),
    }
    template = (ASSETS / "page.html").read_text(encoding="utf-8")
    # One pass over the template: nothing inserted is searched for placeholders again.
    return re.sub(r"@@(TITLE|CSS|DATA|PLOTLY|APP)@@", lambda m: parts[m.group(1)], template)


def default_out(experiment: str, name: str) -> Path:
    """EXPERIMENT/dashboard for a local sweep; ./dashboard-<name> for one in object storage."""
    if storage.is_remote(experiment):
        return Path.cwd() / f"dashboard-{name}"
    return storage.local_path(experiment) / "dashboard"


# The page says who wrote it: an index.html without this (or, for a page written before it,
# the page's title) is not replaced without --overwrite.
GENERATOR = b'<meta name="generator" content="mmse dashboard">'


def is_own_file(path: Path) -> bool:
    """Whether `path` (a regular file) is a page or version file this command wrote."""
    try:
        with open(path, "rb") as handle:
            head = handle.read(8192)
    except OSError:
        return False
    if path.name == PAGE:
        return GENERATOR in head or b"<title>mmse sweep " in head
    try:
        document = json.loads(head)
    except ValueError:
        return False
    return isinstance(document, dict) and set(document) == {"version", "finished"}


class Dashboard:
    """One sweep's page in one folder; `refresh()` rebuilds it from the experiment.

    The folder is written into, not replaced: its index.html and version.json are replaced
    when they are this command's own (`is_own_file`), or with `overwrite`; never when they
    are not regular files (core/outputs.py)."""

    def __init__(
        self,
        experiment: str,
        out: str | Path | None = None,
        refresh_s: float = 5.0,
        overwrite: bool = False,
    ):
        self.experiment, self.refresh_s = str(experiment), refresh_s
        self.out = Path(out).expanduser().resolve() if out is not None else None
        self.version: str | None = None
        self.finished = False
        self.overwrite = overwrite
        self.checked: set[str] = set()

    def check_out(self, names: tuple[str, ...]) -> None:
        """Refuse an output folder that is not one, and files in it that are not ours."""
        assert self.out is not None
        outputs.check_output_folder(self.out)
        for name in names:
            path = self.out / name
            if name in self.checked:
                continue
            ours = outputs.special_kind(path) is None and path.is_file() and is_own_file(path)
            outputs.check_output_file(path, overwrite=self.overwrite or ours)
            self.checked.add(name)

    @property
    def page(self) -> Path:
        assert self.out is not None
        return self.out / PAGE

    def refresh(self, write_version: bool = False) -> bool:
        """Read the experiment again; write the page if its data changed. True if written."""
        experiment = load_experiment(self.experiment)
        data = page_data(experiment)
        if self.out is None:
            self.out = default_out(self.experiment, experiment.name)
        self.finished = experiment.finished
        version = data_version(data)
        if version == self.version and self.page.exists():
            return False
        self.check_out((PAGE, VERSION) if write_version else (PAGE,))
        try:
            atomic.write_text(self.page, render_page(data, self.refresh_s))
            if write_version:
                atomic.write_json(
                    self.out / VERSION, {"version": version, "finished": experiment.finished}
                )
        except OSError as exc:
            raise InputError(f"{self.out}: cannot write the page: {exc.strerror or exc}") from None
        self.version = version
        return True


def write_dashboard(
    experiment: str, out: str | Path | None = None, overwrite: bool = False
) -> Path:
    """Build the sweep's page; returns the path of its index.html."""
    board = Dashboard(experiment, out, overwrite=overwrite)
    board.refresh()
    return board.page


def write_after_sweep(experiment: str, print_line: Callable[[str], None] = print) -> Path | None:
    """The page at the end of `mmse sweep` and `mmse demo`, its path printed. The sweep's
    results are written by then: a page that cannot be built is a warning, not a failure."""
    try:
        page = write_dashboard(experiment)
    except Exception as exc:  # noqa: BLE001 - the sweep itself succeeded
        print(
            f"mmse: warning: no dashboard ({first_line(exc)}); "
            f"build it with: mmse dashboard {experiment}",
            file=sys.stderr,
        )
        return None
    print_line(f"dashboard: {page}")
    return page


class _Handler(SimpleHTTPRequestHandler):
    # Only the page and its version file, and only to a browser that asked for this machine
    # by its loopback name: another site's page cannot read it by rebinding its DNS name
    # to 127.0.0.1, and nothing else in the folder is listed or served.
    SERVED: ClassVar[dict[str, str]] = {"/": PAGE, f"/{PAGE}": PAGE, f"/{VERSION}": VERSION}

    def send_head(self):
        host = (self.headers.get("Host") or "").rsplit(":", 1)[0]
        path = self.path.split("?", 1)[0]
        if host not in ("127.0.0.1", "localhost"):
            self.send_error(HTTPStatus.FORBIDDEN)
            return None
        if path not in self.SERVED:
            self.send_error(HTTPStatus.NOT_FOUND)
            return None
        self.path = "/" + self.SERVED[path]
        return super().send_head()

    def end_headers(self) -> None:
        self.send_header("Cache-Control", "no-store")  # a reload gets the rebuilt page
        super().end_headers()

    def log_message(self, format: str, *args: Any) -> None:
        pass


def start_server(folder: Path, port: int) -> ThreadingHTTPServer:
    """An HTTP server for `folder` on 127.0.0.1 only, serving from a daemon thread."""
    try:
        server = ThreadingHTTPServer(
            (HOST, port), functools.partial(_Handler, directory=str(folder))
        )
    except OSError as exc:
        raise InputError(f"{HOST}:{port}: cannot serve there: {exc.strerror or exc}") from None
    threading.Thread(target=server.serve_forever, name="mmse-dashboard", daemon=True).start()
    return server


def serve(
    experiment: str,
    out: str | Path | None = None,
    port: int = 8000,
    interval_s: float = 5.0,
    stop: threading.Event | None = None,
    overwrite: bool = False,
) -> int:
    """Build the page, serve its folder on 127.0.0.1:port, and rebuild it every `interval_s`
    while the sweep runs (until Ctrl-C, or `stop` is set)."""
    board = Dashboard(experiment, out, refresh_s=interval_s, overwrite=overwrite)
    board.refresh(write_version=True)
    server = start_server(board.out, port)
    how = (
        "finished sweep"
        if board.finished
        else f"rebuilt every {interval_s:g} s while the sweep runs"
    )
    print(
        f"dashboard: {board.page}\nserving http://{HOST}:{server.server_address[1]}/ "
        f"({how}; Ctrl-C stops)",
        flush=True,
    )
    stop = stop or threading.Event()
    try:
        while not stop.wait(interval_s):
            if board.finished:
                continue
            try:
                if board.refresh(write_version=True):
                    state = "sweep finished" if board.finished else "sweep running"
                    print(f"dashboard: rebuilt ({state})", flush=True)
            except InputError as exc:  # e.g. storage unreachable for a moment: keep the last page
                print(f"mmse: warning: {exc}", file=sys.stderr, flush=True)
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
    return 0
