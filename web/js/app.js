// gatehouse: small enhancements. Every page works without this file.
(() => {
  'use strict';

  const root = document.documentElement;
  const $ = (id) => document.getElementById(id);

  // ---- Sidebar collapse (button and the "[" key) ----
  const sidebarToggle = $('sidebar-toggle');

  function toggleSidebar() {
    const collapsed = root.classList.toggle('sidebar-collapsed');
    document.cookie = `gatehouse_sidebar=${collapsed ? 'collapsed' : 'expanded'}; path=/; max-age=31536000; SameSite=Lax`;
    const label = collapsed ? 'Expand sidebar' : 'Collapse sidebar';
    sidebarToggle.setAttribute('aria-expanded', collapsed ? 'false' : 'true');
    sidebarToggle.setAttribute('aria-label', label);
    sidebarToggle.title = `${label} ([)`;
  }

  if (sidebarToggle) sidebarToggle.addEventListener('click', toggleSidebar);

  const isEditable = (el) => !!el && el.nodeType === 1 && (/^(INPUT|TEXTAREA|SELECT)$/.test(el.tagName) || el.isContentEditable);

  // ---- Drawer (phones) ----
  const drawerToggle = $('drawer-toggle');
  const sidebar = $('sidebar');

  function setDrawer(open) {
    root.classList.toggle('drawer-open', open);
    if (drawerToggle) drawerToggle.setAttribute('aria-expanded', open ? 'true' : 'false');
  }

  if (drawerToggle) {
    drawerToggle.setAttribute('aria-expanded', 'false');
    drawerToggle.addEventListener('click', () => {
      const open = !root.classList.contains('drawer-open');
      setDrawer(open);
      const first = open && sidebar && sidebar.querySelector('.nav-link');
      if (first) first.focus();
    });
  }

  // ---- User menu ----
  const userMenu = $('user-menu');

  document.addEventListener('click', (e) => {
    if (userMenu && userMenu.open && !userMenu.contains(e.target)) userMenu.open = false;
    if (root.classList.contains('drawer-open') && sidebar && !sidebar.contains(e.target) &&
        !(drawerToggle && drawerToggle.contains(e.target))) {
      setDrawer(false);
    }
  });

  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape') {
      if (userMenu && userMenu.open) {
        userMenu.open = false;
        const summary = userMenu.querySelector('summary');
        if (summary) summary.focus();
      } else if (root.classList.contains('drawer-open')) {
        setDrawer(false);
        if (drawerToggle) drawerToggle.focus();
      }
      return;
    }
    if (e.key !== '[' || !sidebarToggle) return;
    if (e.defaultPrevented || e.isComposing || e.ctrlKey || e.altKey || e.metaKey || e.shiftKey) return;
    if (isEditable(e.target) || isEditable(document.activeElement)) return;
    if (document.querySelector('dialog[open]')) return;
    e.preventDefault();
    toggleSidebar();
  });

  // ---- Summary: live refresh ----
  if ($('usage-cards')) {
    const setField = (name, value) => {
      const el = document.querySelector(`[data-field="${name}"]`);
      if (el && value !== undefined && value !== null) el.textContent = String(value);
    };

    const update = (json) => {
      const host = json.host || {};
      for (const key of ['cpu', 'memory', 'disk', 'load']) {
        const gauge = host[key];
        const card = document.querySelector(`[data-meter="${key}"]`);
        if (!gauge || !card) continue;
        const pct = Math.min(100, Math.max(0, Number(gauge.percent) || 0));
        const meter = card.querySelector('.meter');
        if (meter) {
          meter.setAttribute('aria-valuenow', String(Math.round(pct)));
          meter.setAttribute('aria-valuetext', gauge.text);
          meter.dataset.level = pct >= 90 ? 'high' : pct >= 70 ? 'mid' : 'low';
        }
        const fill = card.querySelector('rect.meter-fill');
        if (fill) fill.setAttribute('width', pct.toFixed(1));
        setField(`${key}_text`, gauge.text);
      }
      setField('uptime_text', host.uptime_text);
      setField('gatehouse_uptime_text', json.gatehouse && json.gatehouse.uptime_text);
      setField('active_sessions', json.account && json.account.active_sessions);
      setField('sampled', new Date().toLocaleTimeString());
    };

    let timer = null;
    let busy = false;

    const refresh = async () => {
      if (busy || document.hidden) return;
      busy = true;
      try {
        const res = await fetch('/api/v1/summary', { credentials: 'same-origin', headers: { Accept: 'application/json' } });
        if (res.status === 401) window.location.href = '/login';
        else if (res.ok) update(await res.json());
      } catch (_) {
        // Network trouble: keep the old figures, try again next tick.
      } finally {
        busy = false;
      }
    };

    const start = () => { if (!timer && !document.hidden) timer = setInterval(refresh, 5000); };
    const stop = () => { clearInterval(timer); timer = null; };

    document.addEventListener('visibilitychange', () => {
      if (document.hidden) stop();
      else { refresh(); start(); }
    });
    start();
  }

  // ---- Login: endpoint history and going to another server ----
  const endpoint = $('login-endpoint');
  const loginForm = $('login-form');

  if (endpoint && !endpoint.readOnly) {
    const KEY = 'gatehouse.endpoints';
    const recent = () => {
      try {
        const list = JSON.parse(localStorage.getItem(KEY) || '[]');
        return Array.isArray(list) ? list.filter((s) => typeof s === 'string' && s) : [];
      } catch (_) { return []; }
    };

    const datalist = $('endpoint-history');
    for (const url of datalist ? recent().slice(0, 5) : []) {
      const option = document.createElement('option');
      option.value = url;
      datalist.appendChild(option);
    }

    if (loginForm) {
      loginForm.addEventListener('submit', (e) => {
        const value = endpoint.value.trim();
        let url;
        try { url = new URL(value); } catch (_) { return; } // not a URL: the server explains
        if (url.protocol !== 'http:' && url.protocol !== 'https:') return;

        try {
          localStorage.setItem(KEY, JSON.stringify([value, ...recent().filter((v) => v !== value)].slice(0, 5)));
        } catch (_) { /* storage unavailable */ }

        let own = window.location.origin;
        try { own = new URL(endpoint.dataset.own || '', window.location.href).origin; } catch (_) { /* keep */ }
        if (url.origin === own) return;

        // Another server: go to its login page; the password stays here.
        e.preventDefault();
        url.search = url.hash = '';
        if (!url.pathname.endsWith('/')) url.pathname += '/';
        window.location.href = new URL('login', url).href;
      });
    }
  }

  // ---- Signup: the password rule, ticked off while typing ----
  // Mirrors the server's check (src/domain/password.rs), which decides:
  // characters are code points; letter = Alphabetic, digit = Numeric,
  // special = neither of those nor white space. "common" stays neutral.
  const signupForm = $('signup-form');
  const newPassword = $('signup-password');

  if (signupForm && newPassword) {
    const re = (src) => { try { return new RegExp(src, 'u'); } catch (_) { return null; } };
    const letter = re('\\p{Alphabetic}');
    const digit = re('\\p{N}');
    const special = re('[^\\p{Alphabetic}\\p{N}\\p{White_Space}]');
    const min = Number(signupForm.dataset.min) || 0;
    const ids = [$('signup-email'), $('signup-username')].filter(Boolean);
    const confirm = $('signup-password-confirm');
    const confirmHint = $('confirm-hint');

    const checks = {
      length: (pw) => Array.from(pw).length >= min,
      letter: (pw) => (letter ? letter.test(pw) : null),
      digit: (pw) => (digit ? digit.test(pw) : null),
      special: (pw) => (special ? special.test(pw) : null),
      'not-id': (pw) => ids.every((f) => f.value.trim().toLowerCase() !== pw.toLowerCase()),
    };

    // state: true (met), false (not yet) or null (neutral).
    const mark = (li, state) => {
      const name = state === null ? '' : state ? 'met' : 'unmet';
      if ((li.dataset.state || '') === name) return; // no change: nothing to announce
      li.dataset.state = name;
      li.classList.toggle('met', state === true);
      li.classList.toggle('unmet', state === false);
      let sr = li.querySelector('.rule-state');
      if (state === null) {
        if (sr) sr.remove();
        return;
      }
      if (!sr) {
        sr = document.createElement('span');
        sr.className = 'rule-state visually-hidden';
        li.append(sr);
      }
      sr.textContent = state ? ' (done)' : ' (not yet)';
    };

    const updateRules = () => {
      const pw = newPassword.value;
      for (const li of document.querySelectorAll('#password-rules li[data-rule]')) {
        const check = checks[li.dataset.rule];
        if (check) mark(li, pw ? check(pw) : null);
      }
    };

    const updateConfirm = () => {
      if (!confirm || !confirmHint) return;
      const same = confirm.value === newPassword.value;
      const state = confirm.value ? (same ? 'match' : 'differ') : '';
      confirmHint.classList.toggle('match', state === 'match');
      confirmHint.classList.toggle('differ', state === 'differ');
      confirmHint.textContent = state === 'match' ? 'Passwords match.' : state === 'differ' ? 'The passwords differ.' : '';
    };

    newPassword.addEventListener('input', () => { updateRules(); updateConfirm(); });
    for (const f of ids) f.addEventListener('input', updateRules);
    if (confirm) confirm.addEventListener('input', updateConfirm);
    // A browser may restore or autofill the fields.
    if (newPassword.value) { updateRules(); updateConfirm(); }
  }

  // ---- Terms and Privacy: read them in a dialog, stay on the form ----
  // Without this (or without <dialog>) the links open the pages in a new tab.
  for (const link of document.querySelectorAll('a[data-dialog]')) {
    const dialog = $(link.dataset.dialog);
    if (!dialog || typeof dialog.showModal !== 'function') continue;
    link.addEventListener('click', (e) => {
      // Ctrl/Cmd/Shift-click still opens the page, as a link does.
      if (e.button !== 0 || e.ctrlKey || e.metaKey || e.shiftKey || e.altKey) return;
      // Also keeps the click from ticking the checkbox of the <label>.
      e.preventDefault();
      if (dialog.open) return;
      dialog.showModal();
      dialog.addEventListener('close', () => link.focus(), { once: true });
    });
  }

  // ---- Times: show local, keep UTC in the title ----
  for (const el of document.querySelectorAll('time[datetime]')) {
    const d = new Date(el.getAttribute('datetime'));
    if (Number.isNaN(d.getTime())) continue;
    el.textContent = d.toLocaleString(undefined, { dateStyle: 'medium', timeStyle: 'short' });
    el.title = `${d.toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, '')} UTC`;
  }
})();

// ---- Passkeys (WebAuthn) ----
// A form with data-passkey asks the server for a challenge (data-start,
// the form's own fields as the body), hands it to the browser, puts the
// answer in its hidden field and is sent. Without this script or WebAuthn
// the forms stay hidden behind their buttons' errors: passwords and codes
// still work.
(() => {
  'use strict';
  if (!window.PublicKeyCredential || !navigator.credentials) return;

  const fromB64 = (s) => {
    const b = atob(s.replace(/-/g, '+').replace(/_/g, '/'));
    const out = new Uint8Array(b.length);
    for (let i = 0; i < b.length; i++) out[i] = b.charCodeAt(i);
    return out.buffer;
  };
  const toB64 = (buf) => {
    const bytes = new Uint8Array(buf);
    let s = '';
    for (const x of bytes) s += String.fromCharCode(x);
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  };
  const ids = (list) => (list || []).map((c) => ({ ...c, id: fromB64(c.id) }));

  function creationOptions(json) {
    const pk = json.publicKey;
    return {
      ...pk,
      challenge: fromB64(pk.challenge),
      user: { ...pk.user, id: fromB64(pk.user.id) },
      excludeCredentials: ids(pk.excludeCredentials),
    };
  }

  function requestOptions(json) {
    const pk = json.publicKey;
    return { ...pk, challenge: fromB64(pk.challenge), allowCredentials: ids(pk.allowCredentials) };
  }

  function registrationJson(cred) {
    const r = cred.response;
    return {
      id: cred.id,
      rawId: toB64(cred.rawId),
      type: cred.type,
      response: {
        attestationObject: toB64(r.attestationObject),
        clientDataJSON: toB64(r.clientDataJSON),
        transports: r.getTransports ? r.getTransports() : [],
      },
      extensions: cred.getClientExtensionResults(),
    };
  }

  function assertionJson(cred) {
    const r = cred.response;
    return {
      id: cred.id,
      rawId: toB64(cred.rawId),
      type: cred.type,
      response: {
        authenticatorData: toB64(r.authenticatorData),
        clientDataJSON: toB64(r.clientDataJSON),
        signature: toB64(r.signature),
        userHandle: r.userHandle ? toB64(r.userHandle) : null,
      },
      extensions: cred.getClientExtensionResults(),
    };
  }

  async function challenge(form, extra) {
    const body = new URLSearchParams(new FormData(form));
    for (const [k, v] of Object.entries(extra || {})) body.set(k, v);
    const res = await fetch(form.dataset.start, { method: 'POST', body, credentials: 'same-origin' });
    const json = await res.json().catch(() => ({}));
    if (!res.ok) throw new Error(json.error || 'The server could not start the passkey request. Reload the page and try again.');
    return json;
  }

  function showError(form, message) {
    const el = form.querySelector('[data-passkey-error]');
    if (!el) return;
    el.textContent = message;
    el.hidden = false;
  }

  const failure = (e) => (e && e.name === 'NotAllowedError')
    ? 'The passkey request was cancelled or timed out. Try again.'
    : (e && e.name === 'InvalidStateError')
      ? 'This device keeps a passkey of your account already.'
      : (e && e.message) || 'The passkey did not answer. Try again.';

  let autofill = null; // the waiting conditional request, if any

  async function run(form, conditional) {
    const kind = form.dataset.passkey;
    const field = form.querySelector(kind === 'login' ? 'input[name="passkey"]' : 'input[name="credential"]');
    if (kind === 'register') {
      const json = await challenge(form);
      const cred = await navigator.credentials.create({ publicKey: creationOptions(json) });
      field.value = JSON.stringify(registrationJson(cred));
    } else {
      const json = await challenge(form, conditional ? { autofill: '1' } : {});
      const request = { publicKey: requestOptions(json) };
      if (conditional) {
        autofill = new AbortController();
        request.mediation = 'conditional';
        request.signal = autofill.signal;
      }
      const cred = await navigator.credentials.get(request);
      field.value = JSON.stringify(assertionJson(cred));
    }
    form.submit();
  }

  for (const form of document.querySelectorAll('form[data-passkey]')) {
    form.addEventListener('submit', (event) => {
      if (form.dataset.ready) return;
      event.preventDefault();
      if (autofill) { autofill.abort(); autofill = null; }
      run(form, false).catch((e) => showError(form, failure(e)));
    });
  }

  // Passkeys offered in the ID field's suggestions, where the browser can.
  const discover = document.querySelector('form[data-passkey="discover"]');
  if (discover && PublicKeyCredential.isConditionalMediationAvailable) {
    PublicKeyCredential.isConditionalMediationAvailable().then((ok) => {
      if (ok) run(discover, true).catch(() => {});
    });
  }
})();
