// The duomq controller's status page. It polls the controller's API with
// the operator's bearer token and keeps the last minutes of lag figures in
// memory to draw them. Everything is built with DOM calls (textContent,
// never innerHTML), so names from the metadata are never read as markup.
'use strict';

(function () {
  const POLL_MS = 2000;
  const FETCH_TIMEOUT_MS = 5000;
  const WINDOW_MS = 10 * 60 * 1000;
  const TOKEN_KEY = 'duomq-controller-token';
  const AUDIT_ROWS = 20;
  const DRILL_ROWS = 20;
  const SVG_NS = 'http://www.w3.org/2000/svg';
  const COLORS = ['#2f6fdb', '#d9622b', '#2a9d6a', '#8e44ad', '#c0392b', '#7f8c8d'];

  const METRICS = [
    { key: 'consumer', title: 'Consumer lag' },
    { key: 'replication', title: 'Replication lag' },
  ];

  const state = {
    token: '',
    timer: 0,
    // series[metric] maps a DC name to its points {t, v}; v is null while
    // the figure is unknown (the DC is down).
    series: { consumer: new Map(), replication: new Map() },
    dcOrder: [],
  };

  const $ = (id) => document.getElementById(id);

  // ---- small helpers; every field may be missing or null ----

  function arr(x) { return Array.isArray(x) ? x : []; }
  function obj(x) { return x !== null && typeof x === 'object' && !Array.isArray(x) ? x : {}; }
  function num(x) { return typeof x === 'number' && isFinite(x) ? x : 0; }
  function str(x) { return x === null || x === undefined ? '' : String(x); }

  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === null || v === undefined || v === false) continue;
      if (k === 'text') e.textContent = str(v);
      else e.setAttribute(k, v === true ? '' : str(v));
    }
    for (const c of children) {
      if (c === null || c === undefined) continue;
      e.append(c instanceof Node ? c : document.createTextNode(str(c)));
    }
    return e;
  }

  function svg(tag, attrs) {
    const e = document.createElementNS(SVG_NS, tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k === 'text') e.textContent = str(v);
      else e.setAttribute(k, str(v));
    }
    return e;
  }

  function table(headers, rows, empty) {
    if (rows.length === 0) return el('p', { class: 'empty', text: empty });
    const head = el('tr', null, ...headers.map((h) => el('th', { text: h })));
    const body = rows.map((cells) => el('tr', null, ...cells.map((c) => el('td', null, c))));
    return el('table', null, el('thead', null, head), el('tbody', null, ...body));
  }

  function badge(text, kind) { return el('span', { class: 'badge ' + kind, text: text }); }

  function parseTime(s) {
    if (!s) return null;
    const d = new Date(s);
    // Go's zero time is year 1.
    if (isNaN(d.getTime()) || d.getUTCFullYear() <= 1) return null;
    return d;
  }

  function pad(n) { return String(n).padStart(2, '0'); }

  function fmtTime(s) {
    const d = parseTime(s);
    if (!d) return '—';
    const today = new Date();
    const hms = pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds());
    if (d.toDateString() === today.toDateString()) return hms;
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + hms;
  }

  function fmtSeconds(sec) {
    if (typeof sec !== 'number' || !isFinite(sec) || sec < 0) return '—';
    if (sec < 1) return Math.round(sec * 1000) + ' ms';
    if (sec < 60) return sec.toFixed(1) + ' s';
    const m = Math.floor(sec / 60);
    if (m < 60) return m + 'm ' + pad(Math.round(sec % 60)) + 's';
    return Math.floor(m / 60) + 'h ' + pad(m % 60) + 'm';
  }

  function fmtCount(v) {
    if (v === null || v === undefined) return '—';
    if (v >= 1e6) return (v / 1e6).toFixed(v >= 1e7 ? 0 : 1) + 'M';
    if (v >= 1e4) return (v / 1e3).toFixed(v >= 1e5 ? 0 : 1) + 'k';
    return String(v);
  }

  // ---- token ----

  function storedToken() {
    try { return sessionStorage.getItem(TOKEN_KEY) || ''; } catch (e) { return ''; }
  }

  function storeToken(tok) {
    try {
      if (tok) sessionStorage.setItem(TOKEN_KEY, tok);
      else sessionStorage.removeItem(TOKEN_KEY);
    } catch (e) {
      // Storage may be disabled: the token then lives in this page only.
    }
  }

  // tokenFromFragment takes the token of /ui/#token=..., then removes it
  // from the address bar and the history.
  function tokenFromFragment() {
    const m = /(?:^#|&)token=([^&]*)/.exec(location.hash);
    if (!m) return '';
    let tok = '';
    try { tok = decodeURIComponent(m[1]); } catch (e) { tok = m[1]; }
    history.replaceState(null, '', location.pathname + location.search);
    return tok;
  }

  function showLogin(message) {
    $('app').hidden = true;
    $('signout').hidden = true;
    $('login').hidden = false;
    if (message) $('login-message').textContent = message;
    $('token-input').focus();
  }

  function signIn(tok) {
    state.token = tok;
    storeToken(tok);
    $('login').hidden = true;
    $('app').hidden = false;
    $('signout').hidden = false;
    poll();
  }

  function signOut(message) {
    clearTimeout(state.timer);
    state.token = '';
    storeToken('');
    showLogin(message);
  }

  // ---- polling ----

  async function getJSON(path) {
    const ctl = new AbortController();
    const timer = setTimeout(() => ctl.abort(), FETCH_TIMEOUT_MS);
    try {
      const resp = await fetch(path, {
        headers: { Authorization: 'Bearer ' + state.token },
        cache: 'no-store',
        signal: ctl.signal,
      });
      let body = null;
      try {
        body = await resp.json();
      } catch (e) {
        return { ok: false, status: resp.status, body: null, error: 'the answer is not JSON' };
      }
      return { ok: resp.ok, status: resp.status, body: body };
    } catch (e) {
      const msg = e && e.name === 'AbortError' ? 'no answer within ' + FETCH_TIMEOUT_MS / 1000 + ' s' : str(e && e.message ? e.message : e);
      return { ok: false, status: 0, body: null, error: msg };
    } finally {
      clearTimeout(timer);
    }
  }

  function failure(name, res) {
    if (res.ok) return null;
    if (res.status === 0) return name + ': controller unreachable (' + res.error + ')';
    const b = obj(res.body);
    const why = b.error || res.error;
    return name + ': HTTP ' + res.status + (why ? ': ' + why : '');
  }

  // The API is next to the page: /ui/ -> /v1/...; relative, so the page
  // also works behind a reverse proxy that adds a path prefix.
  async function poll() {
    clearTimeout(state.timer);
    if (!state.token) { showLogin(''); return; }
    const tok = state.token;
    try {
      const [st, audit, drills] = await Promise.all([
        getJSON('../v1/status'),
        getJSON('../v1/audit?limit=' + AUDIT_ROWS),
        getJSON('../v1/drills?limit=' + DRILL_ROWS),
      ]);
      if (tok !== state.token) return; // signed out or in again meanwhile
      if ([st, audit, drills].some((r) => r.status === 401)) {
        signOut('The controller refused the token: enter it again.');
        return;
      }
      const problems = [failure('status', st), failure('audit log', audit), failure('drills', drills)].filter(Boolean);
      if (st.ok) {
        const status = obj(st.body);
        record(status, Date.now());
        renderStatus(status);
        for (const e of arr(status.errors)) problems.push(str(e));
      }
      if (audit.ok) renderAudit(arr(obj(audit.body).records));
      if (drills.ok) renderDrills(arr(obj(drills.body).drills));
      renderProblems(problems);
    } catch (e) {
      renderProblems(['the page failed to show the status: ' + str(e && e.message ? e.message : e)]);
      console.error('status page:', e);
    } finally {
      if (tok === state.token && state.token) state.timer = setTimeout(poll, POLL_MS);
    }
  }

  function renderProblems(problems) {
    const p = $('problems');
    p.hidden = problems.length === 0;
    p.replaceChildren(...problems.map((m) => el('span', { text: m })));
  }

  // ---- lag series ----

  function dcUp(d) { return !d.down && arr(d.alive).length > 0; }

  // record adds one point per DC and metric: the DC's summed consumer lag
  // and its summed replication lag as a follower (null when it is down,
  // as its figures are then unknown, not zero).
  function record(status, now) {
    const sums = { consumer: new Map(), replication: new Map() };
    for (const d of arr(status.dcs).map(obj)) {
      const name = str(d.name);
      if (!name) continue;
      if (!state.dcOrder.includes(name)) state.dcOrder.push(name);
      for (const m of METRICS) sums[m.key].set(name, dcUp(d) ? 0 : null);
    }
    const add = (m, dc, n) => {
      const cur = sums[m].get(dc);
      if (cur !== null && cur !== undefined) sums[m].set(dc, cur + num(n));
    };
    for (const l of arr(status.consumer_lag).map(obj)) add('consumer', str(l.dc), l.messages);
    for (const o of arr(status.ordered).map(obj)) {
      for (const l of arr(o.lag).map(obj)) add('replication', str(l.dc), l.messages);
    }
    for (const m of METRICS) {
      const series = state.series[m.key];
      for (const [dc, v] of sums[m.key]) {
        if (!series.has(dc)) series.set(dc, []);
        series.get(dc).push({ t: now, v: v });
      }
      for (const [dc, pts] of series) {
        while (pts.length > 0 && pts[0].t < now - WINDOW_MS) pts.shift();
        if (pts.length === 0) series.delete(dc);
      }
    }
  }

  function niceMax(v) {
    if (!(v > 10)) return 10;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const f of [1, 2, 5, 10]) if (v <= f * p) return f * p;
    return 10 * p;
  }

  function scaleOf(metric) {
    let max = 0;
    for (const pts of state.series[metric].values()) {
      for (const p of pts) if (p.v !== null && p.v > max) max = p.v;
    }
    return niceMax(max);
  }

  // chart draws one DC's series of a metric on a shared scale, so that the
  // DCs side by side compare at a glance. data-* attributes carry the
  // figures for tests and tools.
  function chart(metric, dc, color, ymax, now) {
    const W = 520, H = 130, L = 44, R = 10, T = 10, B = 20;
    const pts = state.series[metric].get(dc) || [];
    const latest = pts.length > 0 ? pts[pts.length - 1].v : null;
    const s = svg('svg', {
      class: 'chart', viewBox: '0 0 ' + W + ' ' + H, role: 'img',
      'data-metric': metric, 'data-dc': dc, 'data-points': pts.length,
      'data-latest': latest === null ? '' : latest, 'data-max': ymax,
      'aria-label': metric + ' lag of ' + dc,
    });
    const x = (t) => L + (W - L - R) * (1 - (now - t) / WINDOW_MS);
    const y = (v) => T + (H - T - B) * (1 - Math.min(v, ymax) / ymax);
    for (const f of [0, 0.5, 1]) {
      s.append(svg('line', { class: 'grid', x1: L, x2: W - R, y1: y(ymax * f), y2: y(ymax * f) }));
      s.append(svg('text', { class: 'axis', x: L - 4, y: y(ymax * f) + 3, 'text-anchor': 'end', text: fmtCount(ymax * f) }));
    }
    for (const [label, ago] of [['-10m', WINDOW_MS], ['-5m', WINDOW_MS / 2], ['now', 0]]) {
      const anchor = ago === WINDOW_MS ? 'start' : ago === 0 ? 'end' : 'middle';
      s.append(svg('text', { class: 'axis', x: x(now - ago), y: H - 4, 'text-anchor': anchor, text: label }));
    }
    let d = '';
    let pen = false;
    for (const p of pts) {
      if (p.v === null) { pen = false; continue; }
      d += (pen ? 'L' : 'M') + x(p.t).toFixed(1) + ' ' + y(p.v).toFixed(1);
      pen = true;
    }
    s.append(svg('path', { class: 'line', d: d, stroke: color }));
    if (latest !== null) {
      const last = pts[pts.length - 1];
      s.append(svg('circle', { class: 'dot', cx: x(last.t).toFixed(1), cy: y(last.v).toFixed(1), r: 3, fill: color }));
    }
    if (pts.length === 0) {
      s.append(svg('text', { class: 'nodata', x: (L + W - R) / 2, y: H / 2, 'text-anchor': 'middle', text: 'no data yet' }));
    } else if (latest === null) {
      s.append(svg('text', { class: 'nodata', x: (L + W - R) / 2, y: H / 2, 'text-anchor': 'middle', text: 'unknown while the DC is down' }));
    }
    return s;
  }

  // ---- sections ----

  function renderStatus(st) {
    renderSummary(st);
    renderDCs(arr(st.dcs).map(obj));
    renderOrdered(arr(st.ordered).map(obj));
    renderTraffic(obj(st.traffic), arr(st.dcs).map(obj));
    renderInProgress(arr(st.transitions).map(obj));
  }

  function renderSummary(st) {
    const leader = obj(st.leader);
    const etcd = arr(st.etcd).map(obj);
    const reachable = etcd.filter((m) => m.reachable).length;
    const items = [
      ['answered by', str(st.controller) || '—'],
      ['leader', str(leader.id) || 'none'],
      ['etcd members reachable', etcd.length ? reachable + '/' + etcd.length : '—'],
      ['updated', fmtTime(new Date().toISOString())],
    ];
    $('summary').replaceChildren(...items.map(([k, v]) => el('span', { class: 'item' }, el('span', { class: 'k', text: k + ': ' }), el('strong', { text: v }))));
  }

  function renderDCs(dcs) {
    const now = Date.now();
    const byName = new Map(dcs.map((d) => [str(d.name), d]));
    const names = state.dcOrder.filter((n) => byName.has(n));
    const scales = {};
    for (const m of METRICS) scales[m.key] = scaleOf(m.key);
    const cards = names.map((name, i) => {
      const d = byName.get(name);
      const alive = arr(d.alive).map(obj);
      const up = dcUp(d);
      const color = COLORS[i % COLORS.length];
      const head = el('div', { class: 'dc-head' },
        el('h3', { text: name }),
        badge(up ? 'up' : 'down', up ? 'ok' : 'bad'),
        d.state ? badge(str(d.state), d.state === 'active' ? 'ok' : d.state === 'down' ? 'bad' : 'warn') : null);
      const brokers = alive.length
        ? alive.length + ' alive broker' + (alive.length === 1 ? '' : 's') + ': ' + alive.map((a) => str(a.name)).join(', ')
        : 'no alive broker' + (parseTime(d.down_since) ? ' since ' + fmtTime(d.down_since) : '');
      const proxies = num(d.proxies);
      const why = arr(d.unhealthy).map(str);
      const health = proxies + ' live prox' + (proxies === 1 ? 'y' : 'ies') + (why.length ? '; unhealthy: ' + why.join('; ') : '');
      const charts = METRICS.map((m) => {
        const pts = state.series[m.key].get(name) || [];
        const latest = pts.length ? pts[pts.length - 1].v : null;
        return el('figure', { class: 'metric' },
          el('figcaption', null, m.title + ': ', el('strong', { text: fmtCount(latest) })),
          chart(m.key, name, color, scales[m.key], now));
      });
      return el('article', { class: 'dc', 'data-dc': name }, head, el('p', { class: 'brokers', text: brokers }),
        el('p', { class: why.length ? 'health bad' : 'health', text: health }), ...charts);
    });
    $('dcs').replaceChildren(...(cards.length ? cards : [el('p', { class: 'empty', text: 'no DC recorded in the metadata' })]));
  }

  function renderOrdered(topics) {
    const rows = topics.map((o) => {
      const lag = new Map();
      for (const l of arr(o.lag).map(obj)) lag.set(str(l.dc), (lag.get(str(l.dc)) || 0) + num(l.messages));
      const lagText = lag.size ? [...lag].map(([dc, n]) => dc + ': ' + n).join(', ') : '—';
      const out = arr(o.out_of_sync).map(str);
      return [str(o.topic), str(o.home) || '—', str(o.primary) || '—', str(num(o.epoch)),
        o.blocked ? badge('blocked', 'bad') : 'no', str(o.replication) || '—', str(num(o.queues)),
        out.length ? badge(out.join(', '), 'bad') : '—', lagText];
    });
    $('ordered').replaceChildren(table(['topic', 'home', 'primary', 'epoch', 'blocked', 'replication', 'queues', 'out of sync', 'replication lag'], rows, 'no ordered topic'));
  }

  function renderTraffic(tr, dcs) {
    const weights = obj(tr.weights);
    const blocked = arr(tr.blocked_dcs).map(str);
    const names = [...new Set([...dcs.map((d) => str(d.name)), ...Object.keys(weights)])].filter(Boolean);
    const equal = Object.keys(weights).length === 0;
    const total = Object.values(weights).reduce((a, w) => a + num(w), 0);
    const rows = names.map((dc) => {
      const w = equal ? null : num(weights[dc]);
      const share = equal ? null : total > 0 ? Math.round((100 * w) / total) : 0;
      return [dc, equal ? 'equal' : String(w),
        share === null ? '—' : el('span', null, el('meter', { min: 0, max: 100, value: share }), ' ' + share + '%'),
        blocked.includes(dc) ? badge('blocked', 'bad') : 'no'];
    });
    const parts = [table(['DC', 'weight', 'share', 'blocked'], rows, 'no DC')];
    if (equal && names.length) parts.push(el('p', { class: 'hint', text: 'No weights set: every active DC takes its own writes.' }));
    const overrides = Object.entries(obj(tr.topic_overrides));
    if (overrides.length) {
      parts.push(el('p', { class: 'hint', text: 'Per-topic weights: ' + overrides.map(([t, ws]) =>
        t + ' (' + Object.entries(obj(ws)).map(([dc, w]) => dc + '=' + num(w)).join(', ') + ')').join('; ') }));
    }
    $('traffic').replaceChildren(...parts);
  }

  function renderInProgress(trs) {
    const rows = trs.map((t) => [str(t.kind), str(t.topic), str(t.from) + ' → ' + str(t.to), str(t.phase), fmtTime(t.started), str(t.actor)]);
    $('inprogress').replaceChildren(table(['kind', 'topic', 'move', 'phase', 'started', 'by'], rows, 'none'));
  }

  function renderAudit(recs) {
    const rows = recs.map(obj).map((r) => {
      const after = obj(r.after);
      let move = r.from || r.to ? str(r.from) + ' → ' + str(r.to) : '';
      if (!move && Object.keys(obj(after.weights)).length) {
        move = 'weights ' + Object.entries(obj(after.weights)).map(([dc, w]) => dc + '=' + num(w)).join(', ');
      }
      const outcome = str(r.outcome);
      const why = [str(r.reason), r.error ? 'error: ' + str(r.error) : ''].filter(Boolean).join('; ');
      return [fmtTime(r.time), str(r.kind), str(r.topic || r.dc), move,
        outcome ? badge(outcome, outcome === 'ok' ? 'ok' : 'bad') : '—',
        r.pause_seconds ? fmtSeconds(r.pause_seconds) : '—', fmtSeconds(r.duration_seconds), str(r.actor), why];
    });
    $('audit').replaceChildren(table(['time', 'kind', 'topic / DC', 'move', 'outcome', 'write pause', 'took', 'by', 'why'], rows, 'no change recorded yet'));
  }

  function renderDrills(drills) {
    const rows = drills.map(obj).map((d) => {
      const s = parseTime(d.started), f = parseTime(d.finished);
      return [str(d.id), str(d.scenario), fmtTime(d.started), s && f ? fmtSeconds((f - s) / 1000) : '—',
        d.passed ? badge('passed', 'ok') : badge('failed', 'bad')];
    });
    $('drills').replaceChildren(table(['id', 'scenario', 'started', 'took', 'result'], rows, 'no drill run yet'));
  }

  // ---- start ----

  function start() {
    $('login-form').addEventListener('submit', (ev) => {
      ev.preventDefault();
      const tok = $('token-input').value.trim();
      $('token-input').value = '';
      if (tok) signIn(tok);
    });
    $('signout').addEventListener('click', () => signOut('Token forgotten.'));
    const tok = tokenFromFragment() || storedToken();
    if (tok) signIn(tok);
    else showLogin('');
  }

  start();
})();
