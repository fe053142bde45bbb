"""Headless Chromium for the pages synthviz writes: open a page from disk and report what it saw."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def chromium_check(page: Path) -> tuple[dict, list[str]]:
    """Open ``page`` in headless Chromium from the file system; return what an injected script saw
    (images, those not loaded, errors) and the console lines Chromium logged."""
    probe = page.with_name("_check.html")
    script = """<script>
window.__errors = [];
window.addEventListener('error', e => __errors.push(e.message || (e.target && (e.target.src || e.target.href)) || 'error'), true);
window.addEventListener('load', () => {
  const imgs = [...document.images];
  const bad = imgs.filter(i => !(i.complete && i.naturalWidth > 0)).map(i => i.getAttribute('src'));
  const pre = document.createElement('pre'); pre.id = 'synthviz-check';
  pre.textContent = JSON.stringify({images: imgs.length, bad: bad, errors: __errors});
  document.body.appendChild(pre);
});
</script>"""
    probe.write_text(page.read_text().replace("<head>", "<head>" + script, 1))
    cmd = [CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
           "--disable-background-networking", "--disable-component-update", "--disable-sync",
           f"--user-data-dir={page.parent / '_chromium'}", "--enable-logging=stderr", "--v=0",
           "--virtual-time-budget=5000", "--dump-dom", probe.as_uri()]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    start = proc.stdout.index('<pre id="synthviz-check">') + len('<pre id="synthviz-check">')
    found = json.loads(proc.stdout[start : proc.stdout.index("</pre>", start)].replace("&quot;", '"').replace("&amp;", "&"))
    console = [line for line in proc.stderr.splitlines() if ":CONSOLE" in line]
    probe.unlink()
    return found, console
