"""The frame of every page: styles, navigation, the one small script, the security policy.

Nothing is fetched from elsewhere: styles and script are inline, images are
``data:`` URIs, and the Content-Security-Policy allows only this script (by its
hash), so even markup that slipped through escaping could not run.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Final

from mlops_lite.ui.html import Markup, tag
from mlops_lite.ui.links import Links

__all__ = ["CONTENT_SECURITY_POLICY", "render_page"]

_STYLE: Final = """
:root { --fg: #1d2330; --muted: #5f6b7a; --line: #d8dee6; --bg: #f6f8fa; --accent: #3557d1;
  --ok: #1f883d; --bad: #cf222e; --warn: #bf8700; --run: #0969da; --cache: #8250df; }
* { box-sizing: border-box; }
body { margin: 0; font: 14px/1.45 system-ui, -apple-system, "Segoe UI", sans-serif;
  color: var(--fg); background: #fff; }
header { display: flex; gap: 20px; align-items: center; padding: 10px 24px;
  background: #1d2330; color: #fff; }
header a { color: #d0d7e2; text-decoration: none; }
header a.active, header a:hover { color: #fff; }
header .brand { font-weight: 700; color: #fff; margin-right: 12px; }
header .repo { margin-left: auto; color: #8b96a8; font-size: 12px; }
main { padding: 18px 24px 40px; max-width: 1500px; }
h1 { font-size: 20px; margin: 4px 0 12px; word-break: break-all; }
h2 { font-size: 16px; margin: 22px 0 8px; }
a { color: var(--accent); }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 5px 8px; border-bottom: 1px solid var(--line);
  vertical-align: top; }
th { background: var(--bg); font-weight: 600; white-space: nowrap; }
a.run-link, td.when { white-space: nowrap; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.differs td { background: #fff8c5; }
code, pre, .mono { font-family: ui-monospace, SFMono-Regular, Menlo, monospace; font-size: 12.5px; }
pre { background: var(--bg); border: 1px solid var(--line); padding: 10px; overflow: auto;
  max-height: 520px; white-space: pre-wrap; word-break: break-word; }
dl.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; margin: 0; }
dl.facts dt { color: var(--muted); }
dl.facts dd { margin: 0; word-break: break-word; }
.status { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 12px;
  font-weight: 600; color: #fff; background: var(--muted); }
.status-completed { background: var(--ok); }
.status-failed, .status-crashed { background: var(--bad); }
.status-running { background: var(--run); } .status-cached { background: var(--cache); }
.status-skipped, .status-cancelled, .status-unreadable { background: var(--warn); }
.stage-production { background: var(--ok); } .stage-staging { background: var(--run); }
.stage-archived { background: var(--warn); }
.muted { color: var(--muted); }
.filters { display: flex; flex-wrap: wrap; gap: 8px; align-items: end; margin-bottom: 12px; }
.filters label { display: flex; flex-direction: column; font-size: 12px; color: var(--muted); }
input, select, button { font: inherit; padding: 4px 6px; border: 1px solid var(--line);
  border-radius: 4px; background: #fff; }
button { background: var(--accent); color: #fff; border-color: var(--accent); cursor: pointer; }
details.columns { position: relative; }
details.columns div { position: absolute; z-index: 2; background: #fff;
  border: 1px solid var(--line); padding: 8px; max-height: 320px; overflow: auto;
  min-width: 240px; }
details.columns label { flex-direction: row; gap: 6px; color: var(--fg); }
.pager { display: flex; gap: 12px; align-items: center; margin: 10px 0; }
.grid { display: grid; grid-template-columns: repeat(auto-fit, minmax(380px, 1fr)); gap: 18px; }
.card { border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; }
.error { color: var(--bad); }
.notice { background: #ddf4ff; border: 1px solid #54aeff; padding: 8px 12px; border-radius: 6px; }
svg.dag { max-width: 100%; height: auto; }
svg .edge { fill: none; stroke: #8c959f; stroke-width: 1.5; }
svg .arrowhead { fill: #8c959f; }
svg rect.node { fill: #fff; stroke: var(--muted); stroke-width: 2; }
svg rect.state-completed { stroke: var(--ok); }
svg rect.state-failed { stroke: var(--bad); fill: #ffebe9; }
svg rect.state-cached { stroke: var(--cache); fill: #fbefff; }
svg rect.state-running { stroke: var(--run); stroke-dasharray: 5 3; }
svg rect.state-skipped, svg rect.state-cancelled { stroke: var(--warn); stroke-dasharray: 3 3; }
svg rect.state-artifact { stroke: #57606a; fill: #f6f8fa; }
svg rect.state-code { stroke: #1d2330; fill: #eaeef2; }
svg .node-label { font: 600 12px system-ui, sans-serif; fill: var(--fg); }
svg .node-detail { font: 11px system-ui, sans-serif; fill: var(--muted); }
figure { margin: 0; }
svg.chart { width: 100%; height: auto; background: #fff; border: 1px solid var(--line);
  border-radius: 6px; }
svg.chart .axes line { stroke: #8c959f; }
svg.chart .bar { fill: var(--accent); opacity: .8; }
svg.chart .point { fill: var(--accent); stroke: #fff; }
svg.chart .series { fill: none; stroke: var(--accent); stroke-width: 1.5; opacity: .6; }
svg.chart text { font: 11px system-ui, sans-serif; fill: var(--muted); }
svg.chart .tick-y { text-anchor: end; }
svg.chart .tick-x, svg.chart .axis-label { text-anchor: middle; }
img.preview { max-width: 100%; image-rendering: pixelated; border: 1px solid var(--line); }
"""

# Live pages (served, not reported) poll for changes: new runs, a run finishing,
# a teammate's runs after `pull`, a followed run's steps ending. A page whose
# address changes (a running run's sha does when it ends) reloads at data-reload.
# A followed log is re-read while its step runs.
_SCRIPT: Final = """
(function () {
  var body = document.body, changes = body.dataset.changes, token = body.dataset.token;
  function text(r) { return r.ok ? r.text() : null; }
  if (changes && token) {
    setInterval(function () {
      fetch(changes, {cache: "no-store"}).then(text).then(function (t) {
        if (t && t !== token) { location.replace(body.dataset.reload || location.href); }
      }).catch(function () {});
    }, 2000);
  }
  var log = document.querySelector("pre[data-follow]");
  if (log) {
    setInterval(function () {
      fetch(log.dataset.follow, {cache: "no-store"}).then(text).then(function (t) {
        if (t !== null && t !== log.textContent) { log.textContent = t;
          log.scrollTop = log.scrollHeight; }
      }).catch(function () {});
    }, 1000);
  }
})();
"""


def _hash(source: str) -> str:
    digest = hashlib.sha256(source.encode()).digest()
    return "'sha256-" + base64.b64encode(digest).decode() + "'"


# In the page itself too, so a report's files keep it (browsers ignore
# frame-ancestors there, and warn about it: it is only sent as a header).
_PAGE_POLICY: Final = (
    "default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
    f"script-src {_hash(_SCRIPT)}; connect-src 'self'; form-action 'self'; base-uri 'none'"
)
CONTENT_SECURITY_POLICY: Final = _PAGE_POLICY + "; frame-ancestors 'none'"


def render_page(
    title: str,
    body: Markup,
    *,
    links: Links,
    section: str,
    project: str,
    token: str | None = None,
    watch: str | None = None,
    reload: str | None = None,
) -> str:
    """A whole HTML document around ``body``; ``token`` makes a served page reload on change.

    ``watch`` names a running run whose steps' progress also changes the token;
    ``reload`` is where the page reloads (its own address by default).
    """
    navigation = [
        ("runs", "Runs", links.runs()),
        ("pipelines", "Pipelines", links.pipelines()),
        ("models", "Models", links.models()),
        ("artifacts", "Artifacts", links.artifacts()),
    ]
    header = tag(
        "header",
        None,
        tag("span", {"class": "brand"}, "mlops-lite"),
        [
            tag("a", {"href": href, "class": "active" if name == section else None}, text)
            for name, text, href in navigation
            if href is not None
        ],
        tag("span", {"class": "repo", "title": project}, project),
    )
    live = links.changes(watch) if token is not None else None
    document = tag(
        "html",
        {"lang": "en"},
        tag(
            "head",
            None,
            tag("meta", {"charset": "utf-8"}),
            tag(
                "meta",
                {"http-equiv": "Content-Security-Policy", "content": _PAGE_POLICY},
            ),
            tag("meta", {"name": "viewport", "content": "width=device-width, initial-scale=1"}),
            tag("meta", {"name": "referrer", "content": "no-referrer"}),
            tag("title", None, f"{title} · mlops-lite"),
            tag("style", None, Markup(_STYLE)),
        ),
        tag(
            "body",
            {
                "data-changes": live,
                "data-token": token if live else None,
                "data-reload": reload if live else None,
            },
            header,
            tag("main", None, body),
            tag("script", None, Markup(_SCRIPT)),
        ),
    )
    return "<!doctype html>\n" + document
