import express, { type Express } from 'express';
import type { SessionEngine } from '../../src/core/engine.ts';
import { isSessionError } from '../../src/core/errors.ts';
import type { UserSession } from '../../src/core/session.ts';
import { session } from '../../src/frameworks/express.ts';

declare module '../../src/core/session.ts' {
  interface SessionData {
    user: string;
    count: number;
    left: string;
    right: string;
  }
  interface FlashData {
    notice: string;
  }
}

const escapeHtml = (text: string) => text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const STYLE = `
:root{color-scheme:light;--ink:#1b1f24;--muted:#57606a;--line:#d0d7de;--bg:#f6f8fa;--card:#fff;--accent:#0a5bd3;--danger:#b42318;--ok:#1a7f37}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:var(--ink);background:var(--bg)}
header{background:#0d1b2a;color:#fff;padding:1rem 1.5rem}
header h1{margin:0;font-size:1.25rem}
header p{margin:.25rem 0 0;color:#c9d3de;font-size:.95rem}
main{max-width:60rem;margin:1.5rem auto;padding:0 1rem;display:grid;gap:1.25rem}
section{background:var(--card);border:1px solid var(--line);border-radius:.75rem;padding:1.25rem 1.5rem}
h2{margin:0 0 .75rem;font-size:1.1rem}
table{width:100%;border-collapse:collapse;font-size:.95rem}
caption{text-align:left;color:var(--muted);padding-bottom:.5rem}
th,td{text-align:left;padding:.55rem .5rem;border-top:1px solid var(--line);vertical-align:top}
th{font-weight:600;color:var(--muted);font-size:.85rem;text-transform:uppercase;letter-spacing:.02em}
.badge{display:inline-block;margin-left:.4rem;padding:.05rem .5rem;border-radius:999px;background:#dafbe1;color:#0f5323;font-size:.8rem;font-weight:600}
.muted{color:var(--muted);font-size:.9rem}
form{display:inline}
.row{display:flex;flex-wrap:wrap;gap:.5rem;align-items:center}
label{font-weight:600;display:block;margin-bottom:.25rem}
input{font:inherit;padding:.45rem .6rem;border:1px solid #8c959f;border-radius:.4rem;min-width:14rem}
button{font:inherit;padding:.45rem .9rem;border-radius:.4rem;border:1px solid var(--accent);background:var(--accent);color:#fff;cursor:pointer}
button.secondary{background:#fff;color:var(--accent)}
button.danger{background:#fff;color:var(--danger);border-color:var(--danger)}
button:focus-visible,input:focus-visible{outline:3px solid #fb8f44;outline-offset:2px}
.notice{border-left:4px solid var(--ok);background:#eefbf1;padding:.6rem .9rem;border-radius:.4rem;margin:0}
.kept{font-family:ui-monospace,monospace}
`;

const page = (body: string, notice?: string) =>
  `<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width,initial-scale=1"><title>Tessera demo</title>
<style>${STYLE}</style></head><body>
<header><h1>Tessera demo</h1><p>Server-side sessions on the embedded SQLite store: devices, revocation, concurrent writes.</p></header>
<main>${notice ? `<p class="notice" role="status" id="notice">${escapeHtml(notice)}</p>` : ''}${body}</main></body></html>`;

/** "3 min ago" / "in 2 h" for a time in epoch ms, with the exact time in a tooltip. */
function when(ms: number, now: number): string {
  const seconds = Math.round((ms - now) / 1000);
  const abs = Math.abs(seconds);
  const span =
    abs < 60
      ? `${abs} s`
      : abs < 3600
        ? `${Math.round(abs / 60)} min`
        : abs < 172800
          ? `${Math.round(abs / 3600)} h`
          : `${Math.round(abs / 86400)} days`;
  const text = abs < 5 ? 'just now' : seconds < 0 ? `${span} ago` : `in ${span}`;
  const iso = new Date(ms).toISOString();
  return `<time datetime="${iso}" title="${iso}">${text}</time>`;
}

/** A short name for a browser from its User-Agent, enough to tell devices apart. */
function deviceName(entry: UserSession): string {
  const ua = entry.userAgent ?? '';
  const browser = /Edg\//.test(ua)
    ? 'Edge'
    : /Firefox\//.test(ua)
      ? 'Firefox'
      : /Chrome\//.test(ua)
        ? 'Chrome'
        : /Safari\//.test(ua)
          ? 'Safari'
          : ua
            ? ua.split(/[\s/]/)[0]
            : 'Unknown browser';
  const os = /Android/.test(ua)
    ? 'Android'
    : /iPhone|iPad/.test(ua)
      ? 'iOS'
      : /Windows/.test(ua)
        ? 'Windows'
        : /Mac OS X/.test(ua)
          ? 'macOS'
          : /Linux/.test(ua)
            ? 'Linux'
            : '';
  return [browser, os && `on ${os}`].filter(Boolean).join(' ');
}

function devicesSection(devices: UserSession[], now: number): string {
  const rows = devices
    .map(
      (d) => `<tr${d.current ? ' class="current"' : ''}>
<td><strong>${escapeHtml(d.label ?? deviceName(d))}</strong>${d.current ? '<span class="badge">This device</span>' : ''}
<div class="muted">${escapeHtml(d.label ? deviceName(d) : (d.ip ?? ''))}${d.label && d.ip ? ` · ${escapeHtml(d.ip)}` : ''}</div></td>
<td>${when(d.createdAt, now)}</td><td>${when(d.lastSeenAt, now)}</td><td>${when(d.expiresAt, now)}</td>
<td>${
        d.current
          ? '<form method="post" action="/logout"><button class="secondary">Log out</button></form>'
          : `<form method="post" action="/devices/revoke"><input type="hidden" name="key" value="${d.key}"><button class="danger" aria-label="Revoke ${escapeHtml(d.label ?? deviceName(d))}">Revoke</button></form>`
      }</td></tr>`,
    )
    .join('\n');
  return `<section aria-labelledby="devices-title"><h2 id="devices-title">Your devices</h2>
<table><caption><b id="devices">${devices.length}</b> signed-in ${devices.length === 1 ? 'session' : 'sessions'}</caption>
<thead><tr><th scope="col">Device</th><th scope="col">Signed in</th><th scope="col">Last seen</th><th scope="col">Expires</th><th scope="col"><span class="muted">Action</span></th></tr></thead>
<tbody>
${rows}
</tbody></table>
<div class="row" style="margin-top:1rem">
<form method="post" action="/logout-others"><button class="secondary" id="logout-others">Log out other devices</button></form>
<form method="post" action="/logout-everywhere"><button class="danger" id="logout-all">Log out everywhere</button></form>
</div></section>`;
}

const PANEL = `<section aria-labelledby="panel-title"><h2 id="panel-title">Two requests at once</h2>
<p>This button sends two requests together. Each one reads the session, waits a moment, and
changes a different key. Stores that rewrite the whole session keep only the last one to finish;
Tessera writes only what each request changed, so both are kept.</p>
<div class="row"><button id="race" type="button">Send two requests</button></div>
<p id="race-result" role="status" aria-live="polite" class="kept"></p>
<script>
document.getElementById('race').addEventListener('click', async () => {
  const out = document.getElementById('race-result');
  out.textContent = 'Sending…';
  const stamp = new Date().toISOString().slice(11, 23);
  await Promise.all(['left', 'right'].map((side) =>
    fetch('/api/race/' + side, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ value: side + ' @ ' + stamp }) })));
  const kept = await (await fetch('/api/race')).json();
  const both = kept.left && kept.right && kept.left.endsWith(stamp) && kept.right.endsWith(stamp);
  out.textContent = (both ? 'Both kept: ' : 'Lost one: ') + 'left = ' + kept.left + ', right = ' + kept.right;
});
</script></section>`;

/** The demo app: login, a counter, "your devices" with revocation, and the concurrent-writes panel. */
export function createDemoApp(engine: SessionEngine): Express {
  const app = express();
  app.disable('x-powered-by');
  app.use(express.urlencoded({ extended: false }));
  app.use(express.json());
  app.use(session(engine));

  app.get('/', async (req, res) => {
    const user = await req.session.get('user');
    const ended = Number(req.query.ended);
    if (!user) {
      const notice =
        Number.isInteger(ended) && ended > 0 ? `Logged out everywhere: ${ended} sessions ended.` : undefined;
      res.send(
        page(
          `<section aria-labelledby="login-title"><h2 id="login-title">Log in</h2>
<p>You are not logged in. Any name works; log in from a second browser to see two devices.</p>
<form method="post" action="/login" class="row">
<div><label for="user">Name</label><input id="user" name="user" required maxlength="64" autocomplete="username"></div>
<div><label for="label">Device name <span class="muted">(optional)</span></label><input id="label" name="label" maxlength="60" placeholder="e.g. Work laptop"></div>
<div style="align-self:end"><button id="login">Log in</button></div></form></section>`,
          notice,
        ),
      );
      return;
    }
    const notice = await req.session.flashed('notice');
    const count = (await req.session.get('count')) ?? 0;
    const devices = await engine.listUserSessions(user, req.session);
    res.send(
      page(
        `<section aria-labelledby="me-title"><h2 id="me-title">Signed in as <b id="user">${escapeHtml(user)}</b></h2>
<div class="row"><span>Counter: <b id="count">${count}</b></span>
<form method="post" action="/increment"><button class="secondary" id="increment">+1</button></form></div></section>
${devicesSection(devices, Date.now())}
${PANEL}`,
        notice,
      ),
    );
  });

  app.get('/api/state', async (req, res) => {
    res.json({ user: (await req.session.get('user')) ?? null, count: (await req.session.get('count')) ?? 0 });
  });

  app.post('/login', async (req, res) => {
    const user = String(req.body?.user ?? '').trim();
    const label = String(req.body?.label ?? '').trim();
    if (!user || user.length > 64 || label.length > 60) {
      res.status(400).send(page('<section><p>A name of 1 to 64 characters, please.</p></section>'));
      return;
    }
    await req.session.regenerate();
    await req.session.set('user', user);
    await req.session.setUser(user, label ? { label } : {});
    res.redirect(303, '/');
  });

  app.post('/increment', async (req, res) => {
    const count = (await req.session.get('count')) ?? 0;
    await req.session.set('count', count + 1);
    res.redirect(303, '/');
  });

  // The panel's two requests: each reads the session, waits so that the other one reads it too
  // (the overlap is the point), then changes its own key.
  app.post('/api/race/:side', async (req, res) => {
    const side = req.params.side;
    if (side !== 'left' && side !== 'right') {
      res.sendStatus(404);
      return;
    }
    await req.session.load();
    await new Promise((resolve) => setTimeout(resolve, 150));
    await req.session.set(side, String(req.body?.value ?? '').slice(0, 80));
    res.json({ ok: true });
  });

  app.get('/api/race', async (req, res) => {
    res.json({ left: (await req.session.get('left')) ?? null, right: (await req.session.get('right')) ?? null });
  });

  app.post('/devices/revoke', async (req, res) => {
    const user = await req.session.get('user');
    const key = String(req.body?.key ?? '');
    if (!user) {
      res.redirect(303, '/');
      return;
    }
    // Only a session of this user: a key from the form is never trusted on its own.
    const target = (await engine.listUserSessions(user, req.session)).find((d) => d.key === key);
    if (!target) {
      res.status(404).send(page('<section><p>No such device.</p></section>'));
      return;
    }
    if (target.current) await req.session.destroy();
    else {
      await engine.destroyByKey(key);
      await req.session.flash('notice', `Revoked ${target.label ?? deviceName(target)}.`);
    }
    res.redirect(303, '/');
  });

  app.post('/logout', async (req, res) => {
    await req.session.destroy();
    res.redirect(303, '/');
  });

  app.post('/logout-others', async (req, res) => {
    if (await req.session.get('user')) {
      const ended = await req.session.destroyOtherSessions();
      await req.session.flash('notice', `Logged out of ${ended} other ${ended === 1 ? 'session' : 'sessions'}.`);
    }
    res.redirect(303, '/');
  });

  app.post('/logout-everywhere', async (req, res) => {
    const user = await req.session.get('user');
    let ended = 0;
    if (user) ended = await engine.destroyUserSessions(user);
    await req.session.destroy();
    res.redirect(303, ended > 0 ? `/?ended=${ended}` : '/');
  });

  app.use((error: unknown, _req: express.Request, res: express.Response, next: express.NextFunction) => {
    if (res.headersSent) return next(error);
    const status = isSessionError(error) ? error.status : 500;
    res
      .status(status)
      .send(page(`<section><p>Sessions are unavailable right now (${status}). Try again shortly.</p></section>`));
  });
  return app;
}
