/**
 * The status page's stylesheet and script, served from the package (/status/assets/…): no CDN, no build step.
 * Colours meet WCAG AA contrast with their text; health is also written out, never told by colour alone.
 */
export const CSS = `
:root { --ok: #1b6e3a; --lagging: #8a5a00; --failing: #b3261e; --paused: #4a4f57; --fg: #1d1f23; --muted: #575c66;
  --bg: #f6f7f9; --card: #fff; --line: #d5d9e0; --focus: #1a55c4; font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; }
* { box-sizing: border-box; }
body { margin: 0; background: var(--bg); color: var(--fg); line-height: 1.45; font-size: 16px; }
a, button, input, summary { font: inherit; }
:focus-visible { outline: 3px solid var(--focus); outline-offset: 2px; }
.skip { position: absolute; left: -999px; top: 0; background: #fff; padding: .5rem; }
.skip:focus { left: .5rem; }
.visually-hidden { position: absolute; width: 1px; height: 1px; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; }
.top { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; justify-content: space-between; padding: .75rem 1rem; background: #fff; border-bottom: 1px solid var(--line); }
.top h1 { margin: 0; font-size: 1.25rem; }
.controls { display: flex; flex-wrap: wrap; gap: .5rem 1rem; align-items: center; color: var(--muted); }
.controls form { margin: 0; }
main { padding: 1rem; max-width: 1400px; margin: 0 auto; }
h2 { font-size: 1.15rem; margin: 1.25rem 0 .5rem; }
h3 { font-size: 1.05rem; margin: 0; }
h4 { font-size: .95rem; margin: .75rem 0 .25rem; }
.muted { color: var(--muted); font-weight: normal; font-size: .9em; }
.tiles { list-style: none; padding: 0; margin: 0; display: flex; flex-wrap: wrap; gap: .5rem; }
.tile { background: var(--card); border: 1px solid var(--line); border-left-width: 6px; border-radius: 6px; padding: .4rem .8rem; }
.tile .big { font-size: 1.4rem; font-weight: 700; }
.grid { display: grid; grid-template-columns: repeat(auto-fill, minmax(min(100%, 24rem), 1fr)); gap: 1rem; }
.card { background: var(--card); border: 1px solid var(--line); border-left: 8px solid var(--ok); border-radius: 8px; padding: .75rem 1rem; min-width: 0; }
.card > header { display: flex; justify-content: space-between; align-items: center; gap: .5rem; }
.card.health-failing { border-color: var(--failing); background: #fdf1f0; }
.card.health-lagging { border-left-color: var(--lagging); }
.card.health-paused { border-left-color: var(--paused); }
.tile.health-ok { border-left-color: var(--ok); } .tile.health-lagging { border-left-color: var(--lagging); }
.tile.health-failing { border-left-color: var(--failing); } .tile.health-paused { border-left-color: var(--paused); }
.badge { display: inline-block; padding: .1rem .55rem; border-radius: 999px; color: #fff; font-weight: 600; font-size: .85rem; background: var(--paused); }
.badge.health-ok, .badge.inst-ok { background: var(--ok); }
.badge.health-lagging, .badge.inst-draining, .badge.inst-degraded { background: var(--lagging); }
.badge.health-failing, .badge.inst-lost { background: var(--failing); }
.why { margin: .25rem 0 .5rem; color: var(--muted); overflow-wrap: anywhere; }
.facts { display: grid; grid-template-columns: repeat(auto-fill, minmax(10rem, 1fr)); gap: .25rem 1rem; margin: 0; }
.facts dt { color: var(--muted); font-size: .85rem; }
.facts dd { margin: 0; overflow-wrap: anywhere; }
.facts .wide { grid-column: 1 / -1; }
.budgets { margin: .25rem 0 0; padding-left: 1rem; }
.chart { margin: .75rem 0 0; }
.chart svg { display: block; background: #f0f2f5; border-radius: 4px; }
.chart figcaption { font-size: .8rem; color: var(--muted); }
.bar { fill: #2f5fae; } .err { fill: var(--failing); } .spark { fill: none; stroke: #2f5fae; stroke-width: 1.5; }
table { border-collapse: collapse; width: 100%; margin-top: .75rem; font-size: .92rem; }
caption { text-align: left; font-weight: 600; padding-bottom: .25rem; }
th, td { text-align: left; padding: .25rem .4rem; border-bottom: 1px solid var(--line); vertical-align: middle; }
.num { text-align: right; font-variant-numeric: tabular-nums; }
.dlq ul, .running ul, .alerts { padding-left: 1.1rem; margin: .25rem 0; }
.dlq li { margin-bottom: .5rem; overflow-wrap: anywhere; }
.dlq .code { font-family: ui-monospace, monospace; font-weight: 600; }
.dlq .msg { color: var(--muted); font-size: .9rem; }
.dlq form { display: inline; }
button { cursor: pointer; border: 1px solid #1a3f80; background: #1a55c4; color: #fff; border-radius: 4px; padding: .3rem .8rem; min-height: 2.25rem; }
button.link { background: none; color: #1a55c4; border: none; text-decoration: underline; padding: 0; min-height: 0; }
#notice:not(:empty) { margin: .75rem 1rem 0; padding: .5rem .75rem; background: #e8f0fe; border: 1px solid #1a55c4; border-radius: 6px; }
.login { max-width: 24rem; }
.login form { display: grid; gap: .5rem; background: #fff; padding: 1rem; border: 1px solid var(--line); border-radius: 8px; }
.login input { padding: .5rem; border: 1px solid #767b85; border-radius: 4px; }
.error { color: var(--failing); font-weight: 600; }
.table-wrap { overflow-x: auto; max-width: 100%; }
.streams th[scope=row] { overflow-wrap: anywhere; }
@media (max-width: 600px) { main { padding: .5rem; } .card { padding: .6rem; } .facts { grid-template-columns: 1fr 1fr; } }
`;

/**
 * Live refresh (every 5 s: the part below the header is re-rendered by the server, skipped while the keyboard focus
 * is inside it so nobody loses their place) and replay buttons without a page load (the form works without it).
 */
export const JS = `
(() => {
  const main = document.getElementById('main');
  const toggle = document.getElementById('live-toggle');
  const notice = document.getElementById('notice');
  const updated = document.getElementById('updated');
  if (!main || !toggle) return;
  const csrf = main.dataset.csrf || '';
  let busy = false;
  async function refresh(force) {
    if (busy || (!force && !toggle.checked)) return;
    const live = document.getElementById('live');
    if (!force && live && live.contains(document.activeElement) && document.activeElement !== document.body) return;
    busy = true;
    try {
      const res = await fetch('/status/live', { credentials: 'same-origin', headers: { accept: 'text/html' } });
      if (res.status === 401) { location.href = '/status/login'; return; }
      if (!res.ok) throw new Error('HTTP ' + res.status);
      const html = await res.text();
      if (live) live.outerHTML = html;
      if (updated) updated.textContent = 'Updated ' + new Date().toISOString().slice(11, 19) + ' UTC';
      document.documentElement.dataset.refreshed = String(Date.now());
    } catch (e) {
      if (updated) updated.textContent = 'Update failed (' + e.message + '); retrying';
    } finally { busy = false; }
  }
  setInterval(() => refresh(false), 5000);
  main.addEventListener('submit', async (ev) => {
    const form = ev.target;
    if (!(form instanceof HTMLFormElement) || !form.classList.contains('replay')) return;
    ev.preventDefault();
    const button = form.querySelector('button');
    if (button) button.disabled = true;
    notice.textContent = 'Replaying…';
    try {
      const res = await fetch(form.action, {
        method: 'POST', credentials: 'same-origin',
        headers: { accept: 'application/json', 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ csrf }).toString(),
      });
      const body = await res.json().catch(() => ({}));
      notice.textContent = res.ok ? body.message : 'Replay refused: ' + (body.error || res.status);
    } catch (e) {
      notice.textContent = 'Replay failed: ' + e.message;
    }
    await refresh(true);
  });
})();
`;
