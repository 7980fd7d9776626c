// sluice console: apps, a live stream, drains and health, in one page that
// speaks only the public HTTP API (everything it does can be done with
// curl). Log text is attacker-controlled: it only ever reaches the page as
// text nodes (textContent), never as HTML; the server's CSP forbids inline
// script besides.
'use strict';

(() => {
  const TOKEN_KEY = 'sluice.token';
  /** Rows kept in the stream's DOM; older ones are removed. */
  const MAX_ROWS = 2000;
  /** Entries kept in memory, so a filter change can show them again. */
  const MAX_KEPT = 10000;
  /** Rows drawn per gather while following the newest lines, at most. */
  const ROWS_PER_FLUSH = 100;
  /** How long arriving lines are gathered before they are drawn. */
  const GATHER_MS = 50;
  /** Lines replayed when a stream view opens. */
  const RECENT = 100;
  /** Pages of older lines read per scroll when none passes the filters. */
  const OLDER_TRIES = 10;
  /** Entries read per scroll to the top (Log Cache reads by time). */
  const OLDER_PAGE = 200;

  const NEEDS_TOKEN = 'the server wants a token';
  const main = document.getElementById('main');
  const statusLine = document.getElementById('status');
  let cleanup = () => {};

  // --- small helpers ---------------------------------------------------

  /** An element with attributes and children; strings become text nodes. */
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'on') {
        for (const [ev, fn] of Object.entries(v)) node.addEventListener(ev, fn);
      } else {
        node.setAttribute(k, v === true ? '' : String(v));
      }
    }
    for (const c of children) {
      if (c === undefined || c === null) continue;
      node.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return node;
  }

  function svgEl(tag, attrs) {
    const node = document.createElementNS('http://www.w3.org/2000/svg', tag);
    for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
    return node;
  }

  const token = () => sessionStorage.getItem(TOKEN_KEY) || '';

  /** fetch with the tab's token; a 401 asks for one. */
  async function api(path, options) {
    const opts = Object.assign({}, options || {});
    opts.headers = Object.assign({}, opts.headers || {});
    if (token()) opts.headers.Authorization = 'Bearer ' + token();
    const resp = await fetch(path, opts);
    if (resp.status === 401) {
      askToken();
      throw new Error(NEEDS_TOKEN);
    }
    return resp;
  }

  async function apiJson(path, options) {
    const resp = await api(path, options);
    const body = await resp.json().catch(() => ({}));
    if (!resp.ok) throw new Error(body.error || resp.status + ' ' + resp.statusText);
    return body;
  }

  function sendJson(method, path, body) {
    return apiJson(path, {
      method,
      headers: { 'Content-Type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  }

  function askToken() {
    const dialog = document.getElementById('token-dialog');
    if (!dialog.open) dialog.showModal();
  }

  document.getElementById('token-form').addEventListener('submit', () => {
    sessionStorage.setItem(TOKEN_KEY, document.getElementById('token-input').value.trim());
    route();
  });

  const pad = (n, w) => String(n).padStart(w || 2, '0');

  /** Unix ns (a string, as the API sends int64) as the browser's local time. */
  function localTime(ns, withDate) {
    // ns is a decimal string: its milliseconds are all but the last six
    // digits (cheaper than BigInt arithmetic, once per line).
    const text = String(ns || '0');
    const ms = text.length > 6 ? Number(text.slice(0, -6)) : 0;
    const d = new Date(ms);
    const time = pad(d.getHours()) + ':' + pad(d.getMinutes()) + ':' + pad(d.getSeconds()) +
      '.' + pad(d.getMilliseconds(), 3);
    if (!withDate) return time;
    return d.getFullYear() + '-' + pad(d.getMonth() + 1) + '-' + pad(d.getDate()) + ' ' + time;
  }

  /** One colour per app, from its name: one of COLOURS classes
   * (`c0`…, in the stylesheet; classes rather than inline styles, so rows
   * share their style). */
  const COLOURS = 24;
  const colourOf = new Map();
  function colourClass(name) {
    let c = colourOf.get(name);
    if (c === undefined) {
      let h = 0;
      for (let i = 0; i < name.length; i++) h = (h * 31 + name.charCodeAt(i)) >>> 0;
      c = 'c' + (h % COLOURS);
      if (colourOf.size > 10000) colourOf.clear();
      colourOf.set(name, c);
    }
    return c;
  }

  function sparkline(values) {
    const max = Math.max(1, ...values);
    const w = 120, h = 22;
    const points = values.map((v, i) =>
      (i * w / Math.max(1, values.length - 1)).toFixed(1) + ',' + (h - 1 - (v / max) * (h - 2)).toFixed(1));
    const svg = svgEl('svg', { class: 'spark', viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: 'none' });
    svg.append(svgEl('polyline', { points: points.join(' ') }));
    return svg;
  }

  function hashParams() {
    const q = location.hash.split('?')[1] || '';
    return new URLSearchParams(q);
  }

  function setStatus(text, isError) {
    statusLine.textContent = text;
    statusLine.className = 'status' + (isError ? ' error' : '');
  }

  // --- Apps ------------------------------------------------------------

  function viewApps() {
    const body = el('tbody');
    const table = el('table', {},
      el('thead', {}, el('tr', {},
        el('th', {}, 'app'), el('th', {}, 'source id'), el('th', { class: 'num' }, 'lines held'),
        el('th', { class: 'num' }, 'errors (1 h)'), el('th', {}, 'newest'),
        el('th', {}, 'last hour'))),
      body);
    main.replaceChildren(el('h2', {}, 'Apps'), el('div', { class: 'scroll' }, table));
    async function load() {
      try {
        const { apps } = await apiJson('/v1/apps');
        body.replaceChildren(...apps.map((a) => el('tr', {
          class: 'clickable app-row',
          'data-source': a.source_id,
          on: { click: () => { location.hash = '#stream?apps=' + encodeURIComponent(a.source_id); } },
        },
        el('td', { class: colourClass(a.app_name) }, a.app_name),
        el('td', {}, a.source_id),
        el('td', { class: 'num' }, Number(a.lines).toLocaleString()),
        el('td', { class: 'num' + (a.errors_last_hour > 0 ? ' error' : '') }, a.errors_last_hour),
        el('td', {}, a.newest === '0' ? '' : localTime(a.newest, true)),
        el('td', {}, sparkline(a.per_minute)))));
        if (apps.length === 0) {
          body.replaceChildren(el('tr', {}, el('td', { colspan: 6, class: 'hint' },
            'No sources yet: send a line (sluice emit, syslog, POST /logs) and it shows here.')));
        }
        setStatus(apps.length + ' sources');
      } catch (e) {
        setStatus(e.message, true);
      }
    }
    load();
    const timer = setInterval(load, 5000);
    return () => clearInterval(timer);
  }

  // --- Stream ----------------------------------------------------------

  /** The stream JSON of an entry read from Log Cache (for older lines). */
  function fromLogCache(env) {
    const log = env.log || {};
    let text = '';
    try {
      const bytes = Uint8Array.from(atob(log.payload || ''), (c) => c.charCodeAt(0));
      text = new TextDecoder().decode(bytes).replace(/[\r\n]+$/, '');
    } catch (_) { /* not base64: shown empty */ }
    const tags = env.tags || {};
    return {
      timestamp: env.timestamp,
      tags,
      data: text,
      source: log.type === 'ERR' ? 'stderr' : 'stdout',
      container: { id: env.source_id, name: tags.app_name || env.source_id, instance: env.instance_id || '' },
    };
  }

  function viewStream() {
    const params = hashParams();
    const filters = {
      apps: params.get('apps') || '',
      type: params.get('type') || '',
      instance: params.get('instance') || '',
      stream: params.get('stream') || '',
      q: params.get('q') || '',
      space: params.get('space') || '',
      org: params.get('org') || '',
    };
    const lines = el('div', { class: 'lines', id: 'lines' });
    const counter = el('span', { class: 'hint', id: 'counter' });
    const pauseButton = el('button', { id: 'pause' }, 'Pause');
    const input = (name, placeholder, width) => el('input', {
      id: 'f-' + name, value: filters[name], placeholder, size: width,
      on: { change: (e) => { filters[name] = e.target.value.trim(); onFilter(name); } },
    });
    const streamSelect = el('select', {
      id: 'f-stream',
      on: { change: (e) => { filters.stream = e.target.value; onFilter('stream'); } },
    }, el('option', { value: '' }, 'stdout + stderr'), el('option', { value: 'stdout' }, 'stdout'),
    el('option', { value: 'stderr' }, 'stderr'));
    streamSelect.value = filters.stream;
    main.replaceChildren(
      el('div', { class: 'controls' },
        input('apps', 'apps or source ids, comma-separated (all)', 30),
        input('space', 'space', 8),
        input('org', 'org', 8),
        input('type', 'source type (APP/PROC/WEB, RTR…)', 22),
        input('instance', 'instance', 8),
        streamSelect,
        input('q', 'text', 16),
        pauseButton,
        el('button', { id: 'clear', on: { click: () => { kept.length = 0; pending = []; lines.replaceChildren(); count(); } } }, 'Clear'),
        counter),
      lines);

    /** What the stream has delivered, newest last (bounded). */
    const kept = [];
    let pending = [];
    let cursor = params.get('after') || '';
    /** When the view first connected (ns, a string): where a reconnect
     * starts when no line has come yet (no cursor). */
    let since = '';
    let reading = null;
    let paused = false;
    let frame = 0;
    let loadingOlder = false;
    /** Whether lines were left undrawn while following (see flush). */
    let gaps = false;
    let noOlder = false;

    const appSet = () => filters.apps.split(',').map((s) => s.trim()).filter(Boolean);
    function matches(m) {
      const apps = appSet();
      const c = m.container || {};
      // sluice's notices (losses) pass every filter but another app's.
      if (isNotice(m)) return !apps.length || !c.id || c.id === 'sluice' || apps.includes(c.id) || apps.includes(c.name);
      if (apps.length && !apps.includes(c.id) && !apps.includes(c.name)) return false;
      const tags = m.tags || {};
      if (filters.type && (tags.source_type || '') !== filters.type) return false;
      if (filters.instance && c.instance !== filters.instance) return false;
      if (filters.space && tags.space_name !== filters.space) return false;
      if (filters.org && tags.organization_name !== filters.org) return false;
      if (filters.stream && m.source !== filters.stream) return false;
      if (filters.q && !(m.data || '').toLowerCase().includes(filters.q.toLowerCase())) return false;
      return true;
    }
    const isNotice = (m) => (m.tags || {}).source_type === 'SLUICE';

    /** One line: three elements (the line, the app's name in its colour,
     * the message), the rest plain text; fewer elements is less style and
     * layout work at thousands of lines a second. */
    function row(m) {
      const c = m.container || {};
      const tags = m.tags || {};
      const name = c.name || c.id || '';
      const where = (tags.source_type || '') + (c.instance ? '/' + c.instance : '');
      const line = document.createElement('span');
      line.className = 'line' + (m.source === 'stderr' ? ' err' : '') + (isNotice(m) ? ' notice' : '');
      const src = document.createElement('span');
      src.className = 'src ' + colourClass(name);
      src.textContent = name;
      const msg = document.createElement('span');
      msg.className = 'msg';
      msg.textContent = m.data || '';
      line.sluiceTime = m.timestamp; // where older lines are read from
      line.append(localTime(m.timestamp) + ' ', src,
        ' [' + where + '] ' + (m.source === 'stderr' ? 'ERR' : 'OUT') + ' ', msg, '\n');
      return line;
    }

    function count() {
      counter.textContent = kept.length.toLocaleString() + ' kept, ' +
        lines.childElementCount.toLocaleString() + ' shown' + (paused ? ' — paused' : '');
    }

    function atBottom() {
      return lines.scrollHeight - lines.scrollTop - lines.clientHeight < 40;
    }

    /** Rows for what arrived since the last frame, in one DOM change. */
    function flush() {
      frame = 0;
      const follow = atBottom();
      // Following lines faster than the page can draw them (more than
      // ROWS_PER_FLUSH a gather), only the newest are drawn: the others
      // would scroll past unread, and drawing them would freeze the page.
      // They are kept: Pause draws everything again (rerender).
      let batch = pending;
      if (follow && batch.length > ROWS_PER_FLUSH) {
        gaps = true;
        batch = batch.slice(-ROWS_PER_FLUSH);
      } else if (batch.length > MAX_ROWS) {
        batch = batch.slice(-MAX_ROWS);
      }
      pending = [];
      draw(batch, follow);
    }

    /** Appends rows, trims the oldest beyond MAX_ROWS (twice that while
     * the reader is scrolled up, so the rows being read stay), follows
     * the end. */
    function draw(batch, follow) {
      const fragment = document.createDocumentFragment();
      for (const m of batch) fragment.append(row(m));
      lines.append(fragment);
      const extra = lines.childElementCount - (follow ? MAX_ROWS : 2 * MAX_ROWS);
      if (extra > 0) {
        const range = document.createRange();
        range.setStartBefore(lines.firstElementChild);
        range.setEndAfter(lines.children[extra - 1]);
        range.deleteContents();
      }
      if (follow) lines.scrollTop = lines.scrollHeight;
      count();
    }

    /** Lines arriving fast are gathered for GATHER_MS, then drawn in one
     * animation frame: fewer, larger DOM changes leave the page time for
     * its timers and input at thousands of lines a second. */
    function show(m) {
      pending.push(m);
      if (pending.length > 2 * MAX_ROWS) {
        // Not drawn for a while (a hidden tab has no animation frames):
        // only the newest can be shown; all stay kept.
        pending = pending.slice(-MAX_ROWS);
        gaps = true;
      }
      if (!frame) {
        frame = setTimeout(() => (document.hidden ? flush() : requestAnimationFrame(flush)), GATHER_MS);
      }
    }

    /** Keeps what the view uses of a stream entry (not the base64
     * payload the stream JSON also carries), so the kept lines stay small
     * for the garbage collector. */
    function compact(m) {
      const tags = m.tags || {};
      return {
        timestamp: m.timestamp,
        tags: {
          source_type: tags.source_type,
          space_name: tags.space_name,
          organization_name: tags.organization_name,
        },
        data: m.data,
        source: m.source,
        container: m.container || {},
      };
    }

    function receive(full) {
      if (full.cursor) cursor = full.cursor;
      const m = compact(full);
      kept.push(m);
      // Trimmed in steps: one splice per line would move the whole array
      // on every line.
      if (kept.length > MAX_KEPT + 2000) kept.splice(0, kept.length - MAX_KEPT);
      if (matches(m)) show(m);
    }

    function rerender() {
      gaps = false;
      pending = [];
      lines.replaceChildren();
      noOlder = false;
      draw(kept.filter(matches).slice(-MAX_ROWS), true);
    }

    /** The stream's URL: one app is filtered by the server, more by us. */
    function streamUrl() {
      const apps = appSet();
      const path = apps.length === 1 ? '/logs/app:' + encodeURIComponent(apps[0]) : '/logs';
      const q = new URLSearchParams();
      q.set('types', filters.stream || 'logs');
      if (filters.space) q.set('space', filters.space);
      if (filters.org) q.set('org', filters.org);
      // The first time, the newest lines first (the view is never empty);
      // after that, on from the cursor (or, when nothing came yet, from
      // the first connection's time).
      if (cursor) q.set('after', cursor);
      else if (since) q.set('since', since);
      else {
        q.set('recent', String(RECENT));
        since = String(Date.now()) + '000000';
      }
      return path + '?' + q.toString();
    }

    /** Reads the stream as NDJSON with fetch: many lines per read, far
     * fewer tasks than one event per line (EventSource), and the token
     * goes in a header, not the URL. A dropped connection is read again
     * from the cursor after a second; pausing aborts it. */
    async function connect() {
      disconnect();
      const ctrl = new AbortController();
      reading = ctrl;
      while (!ctrl.signal.aborted) {
        try {
          const resp = await api(streamUrl(), { headers: { Accept: 'application/json' }, signal: ctrl.signal });
          if (!resp.ok) throw new Error('stream: ' + resp.status + ' ' + resp.statusText);
          setStatus('live');
          const reader = resp.body.getReader();
          const decoder = new TextDecoder();
          let rest = '';
          for (;;) {
            const { value, done } = await reader.read();
            if (done) break;
            const parts = (rest + decoder.decode(value, { stream: true })).split('\n');
            rest = parts.pop();
            for (const part of parts) {
              if (!part.trim()) continue; // a heartbeat
              let m;
              try { m = JSON.parse(part); } catch (_) { continue; }
              receive(m);
            }
          }
        } catch (e) {
          if (ctrl.signal.aborted) return;
          if (e.message === NEEDS_TOKEN) return; // asked; the view starts again
          setStatus('reconnecting… (' + e.message + ')', true);
        }
        if (ctrl.signal.aborted) return;
        await new Promise((r) => setTimeout(r, 1000));
      }
    }

    function disconnect() {
      if (reading) reading.abort();
      reading = null;
    }

    function onFilter(name) {
      const q = new URLSearchParams();
      for (const [k, v] of Object.entries(filters)) if (v) q.set(k, v);
      history.replaceState(null, '', '#stream' + (q.toString() ? '?' + q.toString() : ''));
      if (['apps', 'stream', 'space', 'org'].includes(name)) {
        // What the server sends changed: a new view, the newest lines of
        // the new choice first. (The old cursor is the old choice's last
        // line, which may lie far back for the new one.)
        kept.length = 0;
        cursor = '';
        since = '';
        rerender();
        if (!paused) connect();
        return;
      }
      rerender(); // the page's own filters: the kept lines again
    }

    pauseButton.addEventListener('click', () => {
      paused = !paused;
      pauseButton.textContent = paused ? 'Resume' : 'Pause';
      if (paused) {
        disconnect();
        setStatus('paused');
        if (gaps) rerender(); // every kept line, to read
      } else {
        connect(); // from the last cursor: nothing is lost
      }
      count();
    });

    /** Scrolled to the top with one app chosen: read older lines, before
     * the first row shown, a page at a time until one holds lines the
     * filters pass (at most OLDER_TRIES pages a scroll). */
    lines.addEventListener('scroll', async () => {
      const apps = appSet();
      if (lines.scrollTop > 0 || loadingOlder || noOlder || apps.length !== 1) return;
      if (lines.childElementCount >= 2 * MAX_ROWS) {
        setStatus('older lines: at most ' + 2 * MAX_ROWS + ' rows; narrow the time with a filter or Clear', true);
        return;
      }
      const first = lines.firstElementChild;
      let end = first && first.sluiceTime ? String(first.sluiceTime) : String(Date.now()) + '000000';
      const sourceId = (kept.find((m) => !isNotice(m) && matches(m)) || { container: { id: apps[0] } }).container.id;
      loadingOlder = true;
      try {
        for (let tries = 0; tries < OLDER_TRIES; tries++) {
          const q = new URLSearchParams({
            end_time: end, descending: 'true', limit: String(OLDER_PAGE), envelope_types: 'LOG',
          });
          const body = await apiJson('/api/v1/read/' + encodeURIComponent(sourceId) + '?' + q);
          const page = body.envelopes.batch.map(fromLogCache);
          if (page.length === 0) { noOlder = true; return; }
          end = String(page[page.length - 1].timestamp); // the oldest: end_time is exclusive
          const older = page.reverse().filter(matches);
          if (older.length === 0) continue;
          const height = lines.scrollHeight;
          const fragment = document.createDocumentFragment();
          for (const m of older) fragment.append(row(m));
          lines.prepend(fragment);
          lines.scrollTop = lines.scrollHeight - height;
          count();
          return;
        }
      } catch (e) {
        setStatus(e.message, true);
      } finally {
        loadingOlder = false;
      }
    });

    connect();
    count();
    return disconnect;
  }

  // --- Drains ----------------------------------------------------------

  function viewDrains() {
    const body = el('tbody');
    const message = el('p', { id: 'drain-message', class: 'hint' });
    const field = (name, placeholder) => el('input', { name, placeholder, id: 'd-' + name });
    const form = el('form', { class: 'add', id: 'drain-form' },
      field('url', 'syslog-tls://logs.example.com:6514'),
      field('apps', 'apps (comma-separated; empty: all)'),
      field('prefixes', 'key prefixes (comma-separated)'),
      field('format', 'format (verbatim, json, {{.text}}…)'),
      field('name', 'name (optional)'),
      el('button', { type: 'submit' }, 'Add drain'));
    form.elements.url.required = true;
    const list = (v) => v.split(',').map((s) => s.trim()).filter(Boolean);
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const f = form.elements;
      const spec = { url: f.url.value.trim(), apps: list(f.apps.value), prefixes: list(f.prefixes.value) };
      if (f.format.value.trim()) spec.format = f.format.value.trim();
      if (f.name.value.trim()) spec.name = f.name.value.trim();
      try {
        const added = await sendJson('POST', '/v1/drains', spec);
        message.textContent = 'added ' + added.name;
        message.className = 'hint';
        form.reset();
        load();
      } catch (err) {
        message.textContent = err.message;
        message.className = 'error';
      }
    });
    const action = (label, fn, cls) => el('button', { class: cls, on: { click: fn } }, label);
    async function act(what, fn) {
      try {
        const r = await fn();
        message.textContent = what + (r && r.detail ? ': ' + r.detail : '');
        message.className = 'hint';
      } catch (err) {
        message.textContent = what + ': ' + err.message;
        message.className = 'error';
      }
      load();
    }
    async function load() {
      try {
        const { drains } = await apiJson('/v1/drains');
        body.replaceChildren(...drains.map((d) => {
          const s = d.status || {};
          const name = encodeURIComponent(d.name);
          return el('tr', { 'data-drain': d.name },
            el('td', {}, d.name), el('td', {}, d.url), el('td', {}, (d.apps || []).join(', ') || 'all'),
            el('td', { class: 'state-' + s.state }, s.state),
            el('td', { class: 'num' }, s.sent), el('td', { class: 'num' }, s.dropped),
            el('td', { class: 'num' }, s.behind === undefined ? '' : s.behind),
            el('td', { class: 'error' }, s.last_error || ''),
            el('td', {},
              action('Test', () => act('test ' + d.name, () => sendJson('POST', '/v1/drains/' + name + '/test'))),
              ' ',
              action('Restart', () => act('restarted ' + d.name, () => sendJson('POST', '/v1/drains/' + name + '/restart'))),
              ' ',
              d.standing ? null : action('Delete', () => act('deleted ' + d.name,
                () => api('/v1/drains/' + name, { method: 'DELETE' }).then((r) => {
                  if (!r.ok) throw new Error(r.status + ' ' + r.statusText);
                })), 'danger')));
        }));
        setStatus(drains.length + ' drains');
      } catch (e) {
        setStatus(e.message, true);
      }
    }
    main.replaceChildren(el('h2', {}, 'Drains'), form, message,
      el('div', { class: 'scroll' }, el('table', {},
        el('thead', {}, el('tr', {}, ...['name', 'url', 'apps', 'state', 'sent', 'dropped', 'behind', 'last error', '']
          .map((h) => el('th', {}, h)))),
        body)));
    load();
    const timer = setInterval(load, 3000);
    return () => clearInterval(timer);
  }

  // --- Health ----------------------------------------------------------

  function chart(title, series, levels) {
    const w = 600, h = 160;
    const all = series.flatMap((s) => s.values);
    const max = Math.max(1e-9, ...all, ...(levels || []).map((l) => l.value * 1.5));
    const n = Math.max(2, ...series.map((s) => s.values.length));
    const svg = svgEl('svg', { viewBox: `0 0 ${w} ${h}`, preserveAspectRatio: 'none' });
    for (const l of levels || []) {
      const y = h - (l.value / max) * (h - 4);
      svg.append(svgEl('line', { x1: 0, x2: w, y1: y, y2: y, class: 'level ' + l.cls }));
    }
    series.forEach((s, i) => {
      const points = s.values.map((v, j) => (j * w / (n - 1)).toFixed(1) + ',' + (h - 2 - (v / max) * (h - 4)).toFixed(1));
      svg.append(svgEl('polyline', { points: points.join(' '), class: 's' + i }));
    });
    const legend = el('div', { class: 'legend' }, ...series.map((s, i) =>
      el('span', { class: 's' + i }, s.name + ' ' + (s.values.length ? s.format(s.values[s.values.length - 1]) : ''))),
    ...(levels || []).map((l) => el('span', { class: 'level-' + l.cls }, l.name)));
    const empty = n < 2 || series.every((s) => s.values.length < 2);
    return el('div', { class: 'chart' }, el('strong', {}, title), svg, legend,
      empty ? el('p', { class: 'hint' }, 'Points come once per self-metrics interval ([metrics] emit_interval_secs, 15 s by default).') : null);
  }

  function viewHealth() {
    const box = el('div', { class: 'charts' });
    const summary = el('p', { id: 'health-summary' });
    main.replaceChildren(el('h2', {}, 'Health'), summary, box);
    async function load() {
      try {
        const [health, metrics] = await Promise.all([
          apiJson('/v1/health'),
          api('/metrics').then((r) => (r.ok ? r.text() : '')),
        ]);
        const series = health.series || [];
        const rate = (key) => series.map((p) => p[key] / Math.max(1, p.seconds));
        const loss = series.map((p) => (p.ingress > 0 ? (100 * p.dropped) / p.ingress : 0));
        const perSecond = (v) => v.toFixed(1) + '/s';
        const logBytes = (metrics.match(/^sluice_log_bytes\s+(\d+)/m) || [])[1];
        summary.replaceChildren(
          el('span', { class: 'level-' + health.level }, 'level ' + health.level), ' · ',
          'last minute: ' + health.last_minute.ingress + ' in, ' + health.last_minute.egress + ' out, ' +
          health.last_minute.dropped + ' dropped (' + health.last_minute.loss_percent + ' %) · ',
          'subscribers ' + health.subscribers,
          logBytes ? ' · log ' + (Number(logBytes) / 1048576).toFixed(1) + ' MiB' : '');
        box.replaceChildren(
          chart('Envelopes per second, last hour', [
            { name: 'ingress', values: rate('ingress'), format: perSecond },
            { name: 'egress', values: rate('egress'), format: perSecond },
            { name: 'dropped', values: rate('dropped'), format: perSecond },
          ]),
          chart('Loss, % of ingress', [
            { name: 'loss', values: loss, format: (v) => v.toFixed(3) + ' %' },
          ], [
            { name: 'warn 0.5 %', value: health.warn_loss_percent || 0.5, cls: 'warn' },
            { name: 'critical 1 %', value: health.critical_loss_percent || 1, cls: 'critical' },
          ]),
          chart('Live subscribers', [
            { name: 'subscribers', values: series.map((p) => p.subscribers), format: String },
          ]),
          chart('Log size, MiB', [
            { name: 'log', values: series.map((p) => p.log_bytes / 1048576), format: (v) => v.toFixed(1) + ' MiB' },
          ]));
        setStatus('health ' + health.level);
      } catch (e) {
        setStatus(e.message, true);
      }
    }
    load();
    const timer = setInterval(load, 5000);
    return () => clearInterval(timer);
  }

  // --- routing ---------------------------------------------------------

  const views = { apps: viewApps, stream: viewStream, drains: viewDrains, health: viewHealth };

  function route() {
    cleanup();
    const name = (location.hash.slice(1).split('?')[0]) || 'apps';
    const view = views[name] || viewApps;
    for (const a of document.querySelectorAll('nav a')) {
      a.classList.toggle('active', a.dataset.view === name);
    }
    cleanup = view() || (() => {});
  }

  window.addEventListener('hashchange', route);
  route();
})();
