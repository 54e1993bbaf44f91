/**
 * Server-rendered HTML of the status page. No inline script or style (the page's CSP forbids them): the stylesheet
 * and the small script are served from the package by routes.ts. Charts are inline SVG with a text alternative.
 */
import type { ConnectionView, Health, RunPoint, StatusView } from './data.ts';
import type { InstanceView } from './instances.ts';

const ESC: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export const esc = (v: unknown): string => String(v ?? '').replace(/[&<>"']/g, (c) => ESC[c] ?? c);
const n = (v: number): string => v.toLocaleString('en-US');

function ago(iso: string | null): string {
  if (!iso) return 'never';
  return `<time datetime="${esc(iso)}" title="${esc(iso)}">${esc(duration((Date.now() - Date.parse(iso)) / 1000))} ago</time>`;
}

export function duration(s: number | null): string {
  if (s === null) return '—';
  const x = Math.max(0, Math.round(s));
  if (x < 90) return `${x} s`;
  if (x < 5400) return `${Math.round(x / 60)} min`;
  if (x < 172_800) return `${Math.round(x / 3600)} h`;
  return `${Math.round(x / 86_400)} d`;
}

const HEALTH_LABEL: Record<Health, string> = { ok: 'OK', lagging: 'Lagging', failing: 'Failing', paused: 'Paused' };

export function page(body: string, title: string): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="color-scheme" content="light">
<title>${esc(title)}</title>
<link rel="stylesheet" href="/status/assets/app.css">
<script src="/status/assets/app.js" defer></script>
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
${body}
</body>
</html>`;
}

export function loginPage(error?: string): string {
  return page(
    `<main id="main" class="login">
<h1>Routiq status</h1>
<form method="post" action="/status/login">
<p>Sign in with the service's admin token (<code>ROUTIQ_SERVICE_TOKEN</code>), or a Clerk session token of your organization (it shows that organization only).</p>
${error ? `<p class="error" role="alert" id="login-error">${esc(error)}</p>` : ''}
<label for="token">Admin token</label>
<input id="token" name="token" type="password" autocomplete="current-password" required${error ? ' aria-describedby="login-error" aria-invalid="true"' : ''}>
<button type="submit">Sign in</button>
</form>
</main>`,
    'Sign in · Routiq status',
  );
}

export function statusPage(v: StatusView, csrf: string, notice?: string): string {
  return page(
    `<header class="top">
<h1>Routiq status</h1>
<div class="controls">
<label class="toggle"><input type="checkbox" id="live-toggle" checked> Live updates</label>
<span id="updated" aria-live="off">Updated <time datetime="${esc(v.generatedAt)}">${esc(v.generatedAt.slice(11, 19))} UTC</time></span>
<form method="post" action="/status/logout"><input type="hidden" name="csrf" value="${esc(csrf)}"><button type="submit" class="link">Sign out</button></form>
</div>
</header>
<div id="notice" role="status" aria-live="polite">${notice ? esc(notice) : ''}</div>
<main id="main" data-csrf="${esc(csrf)}">
${liveSection(v, csrf)}
</main>`,
    'Routiq status',
  );
}

/** The part the script refreshes (GET /status/live). */
export function liveSection(v: StatusView, csrf: string): string {
  const all = v.organizations.flatMap((o) => o.connections);
  const counts = (h: Health) => all.filter((c) => c.health === h).length;
  return `<div id="live">
<section aria-labelledby="summary-h" class="summary">
<h2 id="summary-h" class="visually-hidden">Summary</h2>
<ul class="tiles">
${(['ok', 'lagging', 'failing', 'paused'] as Health[])
  .map(
    (h) =>
      `<li class="tile health-${h}"><span class="big" data-summary="${h}">${counts(h)}</span> ${HEALTH_LABEL[h].toLowerCase()}</li>`,
  )
  .join('\n')}
<li class="tile"><span class="big" data-summary="alerts">${v.alerts.length}</span> alerts</li>
</ul>
${
  v.alerts.length
    ? `<h3>Alerts</h3><ul class="alerts">${v.alerts
        .map(
          (a) =>
            `<li><strong>${esc(a.rule.replace(/_/g, ' '))}</strong> · ${esc(a.organizationId)}/${esc(a.connection)}: ${esc(a.summary)} (since ${ago(a.since || null)})</li>`,
        )
        .join('')}</ul>`
    : ''
}
</section>
${v.organizations.map((o) => orgSection(o, csrf)).join('\n')}
${instancesSection(v.instances)}
</div>`;
}

function orgSection(o: StatusView['organizations'][number], csrf: string): string {
  const id = `org-${o.id.replace(/[^A-Za-z0-9_-]/g, '_')}`;
  return `<section class="org" aria-labelledby="${esc(id)}" data-org="${esc(o.id)}">
<h2 id="${esc(id)}">${esc(o.name)} <span class="muted">${esc(o.id)}</span></h2>
<div class="grid">
${o.connections.length ? o.connections.map((c) => connectionCard(c, csrf)).join('\n') : '<p>No connections configured.</p>'}
</div>
</section>`;
}

function connectionCard(c: ConnectionView, csrf: string): string {
  const hid = `c-${c.organizationId}-${c.connection}`.replace(/[^A-Za-z0-9_-]/g, '_');
  return `<article class="card health-${c.health}" aria-labelledby="${esc(hid)}" data-org="${esc(c.organizationId)}" data-connection="${esc(c.connection)}" data-health="${c.health}">
<header>
<h3 id="${esc(hid)}">${esc(c.connection)} <span class="muted">${esc(c.connector)}</span></h3>
<span class="badge health-${c.health}" data-field="health">${HEALTH_LABEL[c.health]}</span>
</header>
<p class="why">${esc(c.why)}</p>
<dl class="facts">
<div><dt>Last success</dt><dd data-field="last-success">${ago(c.lastSuccessAt)}</dd></div>
<div><dt>Lag</dt><dd data-field="lag">${duration(c.lagSeconds)}</dd></div>
<div><dt>Last run</dt><dd data-field="last-run">${c.lastRun ? `${esc(c.lastRun.status)}, ${n(c.lastRun.records)} records, ${ago(c.lastRun.finishedAt)}` : '—'}</dd></div>
<div><dt>Failed runs (24 h)</dt><dd data-field="failed-runs">${n(c.failedRuns24h)}</dd></div>
<div><dt>Open dead letters</dt><dd data-field="dlq-open">${n(c.openDeadLetters)}</dd></div>
<div><dt>Webhooks (24 h)</dt><dd>accepted <span data-field="webhooks-accepted">${n(c.webhooks.accepted)}</span>, rejected <span data-field="webhooks-rejected">${n(c.webhooks.rejected)}</span>${c.webhooks.duplicate ? `, duplicate ${n(c.webhooks.duplicate)}` : ''}</dd></div>
<div class="wide"><dt>Rate limits</dt><dd data-field="rate">${rate(c)}</dd></div>
</dl>
${running(c)}
${runsChart(c.runs, `Runs of ${c.connection}`)}
${streamsTable(c)}
${deadLetters(c, csrf)}
</article>`;
}

function rate(c: ConnectionView): string {
  const last = `last run: ${n(c.rate.requests)} requests, ${n(c.rate.rateLimited)} rate-limited`;
  if (c.rate.budgets === null) return `${last}; budgets are per process (embedded database)`;
  if (!c.rate.budgets.length) return `${last}; no shared budget used yet`;
  return `${last}<ul class="budgets">${c.rate.budgets
    .map((b) => {
      const left = Math.max(0, b.limit - b.used);
      return `<li>${esc(b.name)}: <meter min="0" max="${b.limit}" value="${left}" low="${Math.ceil(b.limit * 0.2)}" optimum="${b.limit}" aria-label="${esc(b.name)} headroom">${left}</meter> ≈${n(left)} of ${n(b.limit)} per ${duration(b.windowSeconds)} left${b.pausedUntil ? `, paused until ${esc(b.pausedUntil)}` : ''}</li>`;
    })
    .join('')}</ul>`;
}

function running(c: ConnectionView): string {
  if (!c.running.length) return '';
  return `<div class="running"><h4>Running</h4><ul>${c.running
    .map(
      (r) =>
        `<li data-run="${esc(r.id)}"><progress aria-label="run in progress"></progress> ${n(r.records)} records, ${n(r.requests)} requests, for ${duration(r.durationMs / 1000)}${r.host ? ` on ${esc(r.host)}` : ''}${r.stale ? ' <strong>(stale heartbeat)</strong>' : ''}</li>`,
    )
    .join('')}</ul></div>`;
}

/** Bars: records per run (oldest left); a red mark under runs that failed or dead-lettered records. */
export function runsChart(runs: RunPoint[], label: string): string {
  if (!runs.length) return '<p class="muted">No finished runs yet.</p>';
  const w = 240;
  const h = 48;
  const bw = w / Math.max(runs.length, 12);
  const max = Math.max(1, ...runs.map((r) => r.records));
  const failed = runs.filter((r) => r.status === 'failed').length;
  const errs = runs.reduce((a, r) => a + r.deadLetters, 0);
  const total = runs.reduce((a, r) => a + r.records, 0);
  const desc = `${runs.length} runs, ${n(total)} records, ${failed} failed, ${n(errs)} dead letters`;
  const bars = runs
    .map((r, i) => {
      const bh = r.records ? Math.max(2, Math.round((r.records / max) * (h - 8))) : 0;
      const x = (i * bw).toFixed(1);
      const bad = r.status === 'failed' || r.deadLetters > 0;
      return `<g><title>${esc(r.startedAt)}: ${esc(r.status)}, ${n(r.records)} records, ${n(r.deadLetters)} dead letters</title><rect x="${x}" y="${h - 6 - bh}" width="${(bw - 1).toFixed(1)}" height="${bh}" class="bar"/>${bad ? `<rect x="${x}" y="${h - 4}" width="${(bw - 1).toFixed(1)}" height="4" class="err"/>` : ''}</g>`;
    })
    .join('');
  return `<figure class="chart"><svg viewBox="0 0 ${w} ${h}" width="100%" height="${h}" role="img" aria-label="${esc(label)}: ${esc(desc)}" preserveAspectRatio="none">${bars}</svg><figcaption>${esc(desc)} (latest ${runs.length}; red: failed or dead letters)</figcaption></figure>`;
}

function spark(series: number[], label: string): string {
  if (series.length < 2) return '';
  const w = 80;
  const h = 20;
  const max = Math.max(1, ...series);
  const pts = series
    .map((v, i) => `${((i / (series.length - 1)) * w).toFixed(1)},${(h - 2 - (v / max) * (h - 4)).toFixed(1)}`)
    .join(' ');
  return `<svg viewBox="0 0 ${w} ${h}" width="${w}" height="${h}" role="img" aria-label="${esc(label)}"><polyline points="${pts}" class="spark"/></svg>`;
}

function streamsTable(c: ConnectionView): string {
  if (!c.streams.length) return '';
  return `<div class="table-wrap"><table class="streams">
<caption>Records per stream</caption>
<thead><tr><th scope="col">Stream</th><th scope="col" class="num">Synced</th><th scope="col" class="num">Last run</th><th scope="col">Per run</th></tr></thead>
<tbody>
${c.streams
  .map(
    (s) =>
      `<tr data-stream="${esc(s.stream)}"><th scope="row" title="last success: ${esc(s.lastSuccessAt ?? 'never')}">${esc(s.stream)}</th><td class="num" data-field="records">${n(s.records)}</td><td class="num" data-field="last-run-records">${n(s.lastRun)}</td><td>${spark(s.series, `${s.stream}: records in the latest ${s.series.length} runs: ${s.series.join(', ')}`)}</td></tr>`,
  )
  .join('\n')}
</tbody>
</table></div>`;
}

function deadLetters(c: ConnectionView, csrf: string): string {
  if (!c.latestDeadLetters.length) return '';
  return `<div class="dlq"><h4>Latest dead letters</h4><ul>${c.latestDeadLetters
    .map(
      (d) =>
        `<li data-letter="${esc(d.id)}"><span class="code">${esc(d.errorCode)}</span> ${esc(d.errorClass)} · ${esc(d.stream ?? '—')}${d.recordKey ? ` · ${esc(d.recordKey)}` : ''} · ${ago(d.createdAt)}${d.retryCount ? ` · ${d.retryCount} replays` : ''}<br><span class="msg">${esc(d.message.slice(0, 300))}</span>
<form method="post" action="/status/dlq/${esc(d.id)}/replay" class="replay"><input type="hidden" name="csrf" value="${esc(csrf)}"><button type="submit" aria-label="Replay dead letter ${esc(d.recordKey ?? d.id)} of ${esc(c.connection)}">Replay</button></form></li>`,
    )
    .join('')}</ul></div>`;
}

function instancesSection(list: InstanceView[]): string {
  return `<section aria-labelledby="instances-h" class="instances">
<h2 id="instances-h">Service instances</h2>
<div class="table-wrap"><table>
<thead><tr><th scope="col">Instance</th><th scope="col">Health</th><th scope="col">Last heartbeat</th><th scope="col" class="num">Jobs</th><th scope="col">Version</th><th scope="col">Started</th></tr></thead>
<tbody>
${list
  .map(
    (i) =>
      `<tr data-instance="${esc(i.id)}"><th scope="row">${esc(i.host)} pid ${i.pid}${i.self ? ' (this one)' : ''}</th><td><span class="badge inst-${i.health}">${esc(i.health)}</span></td><td>${duration(i.secondsSinceBeat)} ago</td><td class="num">${i.activeJobs}/${i.concurrency}</td><td>${esc(i.version)}</td><td>${ago(i.startedAt || null)}</td></tr>`,
  )
  .join('\n')}
</tbody>
</table></div>
</section>`;
}
