// The Explore view: the selection lives in the URL (share a link, get the same view), the
// time series of the selection on top (drag to zoom), the top table and the flame graph below.

import { adhoc, call, mergedPprof } from './api.js';
import { FlameGraph, parseDiffLevels, parseLevels, sandwich, topTable } from './flamegraph.js';
import { human, percent } from './format.js';
import { drawTimeline } from './timeline.js';

const $ = (id) => document.getElementById(id);
const RANGES = { '5m': 300, '15m': 900, '1h': 3600, '6h': 21600, '24h': 86400, '7d': 604800, '30d': 2592000 };

const state = Object.fromEntries(new URLSearchParams(location.search));
let sortKey = state.sort || 'self';
let tableRows = [];
let unit = 'count';

function showError(error) {
  const box = $('error');
  box.textContent = error ? String(error.message || error) : '';
  box.hidden = !error;
}

/** [from, until] in milliseconds from the URL state (a preset or absolute times). */
function timeRange() {
  const now = Date.now();
  if (state.from && state.until) return [Number(state.from), Number(state.until)];
  return [now - 1000 * (RANGES[state.range || '1h'] || 3600), now];
}

function toLocalInput(ms) {
  const d = new Date(ms - new Date(ms).getTimezoneOffset() * 60000);
  return d.toISOString().slice(0, 19);
}

function writeUrl() {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(state)) if (v !== undefined && v !== '') params.set(k, v);
  history.replaceState(null, '', `?${params}`);
}

function selector(text = state.selector) {
  const extra = (text || '').trim().replace(/^\{|\}$/g, '').trim();
  const parts = [];
  if (state.service) parts.push(`service_name="${state.service.replace(/["\\]/g, '\\$&')}"`);
  if (extra) parts.push(extra);
  return `{${parts.join(',')}}`;
}

async function loadChoices() {
  const [start, end] = timeRange();
  const tenant = state.tenant || '';
  const [services, types] = await Promise.all([
    call('LabelValues', { name: 'service_name', start, end }, tenant),
    call('ProfileTypes', { start, end }, tenant),
  ]);
  const serviceSelect = $('service');
  serviceSelect.replaceChildren(...(services.names || []).map((n) => new Option(n, n)));
  if (!state.service || !(services.names || []).includes(state.service)) state.service = (services.names || [])[0] || '';
  serviceSelect.value = state.service;
  const typeSelect = $('profile-type');
  const list = types.profileTypes || [];
  typeSelect.replaceChildren(...list.map((t) => new Option(`${t.name}:${t.sampleType}`, t.ID)));
  if (!state.type || !list.some((t) => t.ID === state.type)) {
    state.type = (list.find((t) => t.ID.startsWith('process_cpu:cpu:')) || list[0] || {}).ID || '';
  }
  typeSelect.value = state.type;
  // Autocomplete for the label filter: `name="value"` pairs of the selected service.
  const names = await call('LabelNames', { start, end, matchers: [selector('')] }, tenant).catch(() => ({}));
  const labelNames = (names.names || []).filter((n) => !n.startsWith('__') && n !== 'service_name').slice(0, 12);
  const values = await Promise.all(labelNames.map((name) =>
    call('LabelValues', { name, start, end, matchers: [selector('')] }, tenant).then((r) => r.names || []).catch(() => [])));
  $('label-hints').replaceChildren(...labelNames.flatMap((name, i) =>
    [new Option(`{${name}=~".+"}`), ...values[i].slice(0, 25).map((v) => new Option(`{${name}="${v}"}`))]));
}

async function run() {
  showError(null);
  writeUrl();
  const [start, end] = timeRange();
  $('from').value = toLocalInput(start); $('until').value = toLocalInput(end);
  if (!state.type) { showError('No profiles in this time range yet.'); return; }
  unit = state.type.split(':')[2] || 'count';
  const body = { profileTypeID: state.type, labelSelector: selector(), start, end };
  const tenant = state.tenant || '';
  const step = Math.max(15, Math.round((end - start) / 1000 / 240));
  const [merged, series] = await Promise.all([
    call('SelectMergeStacktraces', { ...body, maxNodes: Number(state.maxNodes || 8192) }, tenant),
    call('SelectSeries', { ...body, step }, tenant),
  ]);
  drawTimeline($('timeline'), series.series || [], start, end, (v) => human(v, unit));
  show(merged.flamegraph);
  restoreFocus();
  showSandwich();
}

/** The focused frame as its path of names (`;`-joined) in the URL, found again on load. */
function restoreFocus() {
  if (!state.focus) return;
  const g = flame.graph;
  let at = 0;
  for (const name of state.focus.split(';')) {
    let next = -1;
    for (let i = 0; i < g.count; i++) if (g.parent[i] === at && g.names[g.name[i]] === name) { next = i; break; }
    if (next < 0) return;
    at = next;
  }
  flame.setFocus(at);
  breadcrumbs();
}

/** Shows a graph (from the database or a file) in the flame graph and the table. */
function show(flamegraph) {
  const graph = parseLevels(flamegraph || {});
  flame.set(graph, (v) => human(v, unit));
  tableRows = topTable(graph);
  renderTable();
  applySearch();
  breadcrumbs();
}

async function download() {
  const [start, end] = timeRange();
  const blob = await mergedPprof({ profileTypeID: state.type, labelSelector: selector(), start, end }, state.tenant || '');
  const a = document.createElement('a');
  a.href = URL.createObjectURL(blob);
  a.download = `${state.service || 'profile'}.${(state.type || '').split(':').slice(0, 2).join('.')}.pb.gz`;
  document.body.append(a); a.click(); a.remove();
  setTimeout(() => URL.revokeObjectURL(a.href), 10000);
}

let adhocProfiles = [];

async function openFile(file) {
  showError(null);
  adhocProfiles = await adhoc(file);
  $('adhoc-name').textContent = file.name;
  $('adhoc-profile').replaceChildren(...adhocProfiles.map((p, i) => new Option(`${p.name ? `${p.name}:` : ''}${p.sampleType} (${p.unit})`, String(i))));
  $('adhoc').hidden = false; $('timeline-panel').hidden = true;
  showAdhoc(0);
}

function showAdhoc(index) {
  const profile = adhocProfiles[index];
  if (!profile) return;
  unit = profile.unit || 'count';
  show(profile.flamegraph);
}

const callersGraph = new FlameGraph($('callers'), $('tooltip'), { onFocus() {} });
const calleesGraph = new FlameGraph($('callees'), $('tooltip'), { onFocus() {} });

/** Callers and callees of one function, in place of the flame graph. */
function showSandwich() {
  const on = Boolean(state.sandwich && flame.graph);
  $('sandwich').hidden = !on; $('flamegraph').hidden = on; $('breadcrumbs').hidden = on;
  if (!on) return;
  $('sandwich-name').textContent = state.sandwich;
  const { callers, callees } = sandwich(flame.graph, state.sandwich);
  const format = (v) => human(v, unit);
  callersGraph.set(callers, format); calleesGraph.set(callees, format);
}

async function loadTags() {
  const [start, end] = timeRange();
  const tenant = state.tenant || '';
  const names = await call('LabelNames', { start, end, matchers: [selector()] }, tenant);
  const choices = (names.names || []).filter((n) => !n.startsWith('__') && n !== 'service_name');
  $('tag-name').replaceChildren(...choices.map((n) => new Option(n, n)));
  if (!state.tag || !choices.includes(state.tag)) state.tag = choices[0] || '';
  $('tag-name').value = state.tag;
  const body = $('tags').tBodies[0];
  if (!state.tag) { body.replaceChildren(); return; }
  const step = Math.max(15, Math.round((end - start) / 1000 / 120));
  const result = await call('SelectSeries', { profileTypeID: state.type, labelSelector: selector(), start, end, step, groupBy: [state.tag] }, tenant);
  const rows = (result.series || []).map((s) => {
    const label = (s.labels || []).find((l) => l.name === state.tag);
    const total = (s.points || []).reduce((sum, p) => sum + Number(p.value), 0);
    return { value: label ? label.value : '', total, series: s };
  });
  const whole = rows.reduce((sum, r) => sum + r.total, 0);
  rows.sort((a, b) => b.total - a.total);
  body.replaceChildren(...rows.map((r) => {
    const tr = document.createElement('tr');
    tr.dataset.value = r.value;
    const cells = [r.value || '(none)', null, human(r.total, unit), percent(r.total, whole)];
    for (const text of cells) {
      const td = document.createElement('td');
      if (text === null) {
        const c = document.createElement('canvas'); td.append(c);
        requestAnimationFrame(() => drawTimeline(c, [r.series], start, end, () => ''));
      } else td.textContent = text;
      tr.append(td);
    }
    tr.onclick = () => {
      state.selector = `{${state.tag}="${r.value.replace(/["\\]/g, '\\$&')}"}`;
      $('selector').value = state.selector;
      setView('explore');
    };
    return tr;
  }));
}

const diffGraph = new FlameGraph($('diffgraph'), $('tooltip'), { onFocus() {} });
const leftGraph = new FlameGraph($('leftgraph'), $('tooltip'), { onFocus() {} });
const rightGraph = new FlameGraph($('rightgraph'), $('tooltip'), { onFocus() {} });

async function runDiff() {
  const [start, end] = timeRange();
  const middle = Math.round((start + end) / 2);
  const side = (prefix, from, until) => ({
    selector: state[`${prefix}sel`] ?? state.selector ?? '',
    from: Number(state[`${prefix}from`] || from), until: Number(state[`${prefix}until`] || until),
  });
  // Different selections compare over the same range; the same selection, first half vs second.
  const split = (state.lsel ?? state.selector ?? '') === (state.rsel ?? state.selector ?? '');
  const left = side('l', start, split ? middle : end), right = side('r', split ? middle : start, end);
  $('left-selector').value = left.selector; $('right-selector').value = right.selector;
  $('left-from').value = toLocalInput(left.from); $('left-until').value = toLocalInput(left.until);
  $('right-from').value = toLocalInput(right.from); $('right-until').value = toLocalInput(right.until);
  const request = (s) => ({ profileTypeID: state.type, labelSelector: selector(s.selector), start: s.from, end: s.until, maxNodes: 8192 });
  const tenant = state.tenant || '';
  const [result, l, r] = await Promise.all([
    call('Diff', { left: request(left), right: request(right) }, tenant),
    call('SelectMergeStacktraces', request(left), tenant),
    call('SelectMergeStacktraces', request(right), tenant),
  ]);
  const format = (v) => human(v, unit);
  leftGraph.set(parseLevels(l.flamegraph || {}), format);
  rightGraph.set(parseLevels(r.flamegraph || {}), format);
  diffGraph.set(parseDiffLevels(result.flamegraph || {}), format);
}

function setView(view) {
  state.view = view === 'explore' ? undefined : view;
  for (const a of document.querySelectorAll('#views a')) a.classList.toggle('active', a.dataset.view === view);
  $('main').hidden = view !== 'explore'; $('timeline-panel').hidden = view !== 'explore';
  $('tags-panel').hidden = view !== 'tags'; $('diff-panel').hidden = view !== 'diff';
  refresh(false);
}

function currentView() { return state.view || 'explore'; }

function renderTable() {
  const whole = flame.graph ? flame.graph.grandTotal : 0;
  const rows = [...tableRows].sort((a, b) => (sortKey === 'name' ? a.name.localeCompare(b.name) : b[sortKey] - a[sortKey]));
  const search = (state.search || '').toLowerCase();
  const body = $('top').tBodies[0];
  body.replaceChildren(...rows.filter((r) => !search || r.name.toLowerCase().includes(search)).slice(0, 500).map((r) => {
    const tr = document.createElement('tr');
    if (search) tr.className = 'match';
    tr.onclick = () => { state.sandwich = r.name; writeUrl(); showSandwich(); };
    for (const text of [r.name, `${human(r.self, unit)} (${percent(r.self, whole)})`, `${human(r.total, unit)} (${percent(r.total, whole)})`]) {
      const td = document.createElement('td'); td.textContent = text; tr.append(td);
    }
    return tr;
  }));
}

function applySearch() {
  flame.setSearch(state.search || '');
  const share = flame.searchTotal();
  $('search-share').textContent = state.search ? `matches: ${human(share, unit)} (${percent(share, flame.graph ? flame.graph.grandTotal : 0)})` : '';
  renderTable();
}

function breadcrumbs() {
  const nav = $('breadcrumbs');
  const all = document.createElement('a'); all.textContent = 'all';
  all.onclick = () => { flame.setFocus(-1); delete state.focus; writeUrl(); breadcrumbs(); };
  const crumbs = [all];
  for (const [node, name] of flame.focus >= 0 ? flame.path() : []) {
    const a = document.createElement('a'); a.textContent = name.length > 40 ? `…${name.slice(-40)}` : name;
    a.onclick = () => {
      flame.setFocus(node);
      state.focus = flame.path().map(([, n]) => n).slice(1).join(';') || undefined;
      writeUrl(); breadcrumbs();
    };
    crumbs.push(a);
  }
  nav.replaceChildren(...crumbs);
}

/**
 * Focus on a frame whose subtree was cut at `maxNodes` ("other" frames under it): ask again for
 * the stacks through that call site, so the subtree gets the whole node budget.
 */
async function refocus(node) {
  breadcrumbs();
  state.focus = node >= 0 ? flame.path().map(([, name]) => name).slice(1).join(';') : undefined;
  writeUrl();
  if (node < 0 || !$('adhoc').hidden) return; // an opened file has nothing to ask for
  const g = flame.graph;
  let truncated = false;
  const path = flame.path().map(([, name]) => name).slice(1); // without "total"
  for (let i = 0; i < g.count && !truncated; i++) {
    if (g.names[g.name[i]] !== 'other') continue;
    for (let a = g.parent[i]; a >= 0; a = g.parent[a]) if (a === node) { truncated = true; break; }
  }
  if (!truncated || path.length === 0) return;
  const [start, end] = timeRange();
  const merged = await call('SelectMergeStacktraces', {
    profileTypeID: state.type, labelSelector: selector(), start, end,
    maxNodes: Number(state.maxNodes || 8192),
    stackTraceSelector: { callSite: path.map((name) => ({ name })) },
  }, state.tenant || '');
  const graph = parseLevels(merged.flamegraph || {});
  // The focused frame in the new graph: follow the path from the root.
  let at = 0;
  for (const name of path) {
    let next = -1;
    for (let i = 0; i < graph.count; i++) if (graph.parent[i] === at && graph.names[graph.name[i]] === name) { next = i; break; }
    if (next < 0) return;
    at = next;
  }
  flame.set(graph, (v) => human(v, unit));
  flame.setFocus(at);
  window.emberscope.requeried = path;
  breadcrumbs();
}

const flame = new FlameGraph($('flamegraph'), $('tooltip'), { unit, onFocus: (node) => refocus(node).catch(showError) });

async function refresh(reloadChoices) {
  try {
    if (reloadChoices) await loadChoices();
    showError(null);
    writeUrl();
    const [start, end] = timeRange();
    $('from').value = toLocalInput(start); $('until').value = toLocalInput(end);
    const view = currentView();
    if (view === 'tags') { unit = (state.type || '').split(':')[2] || 'count'; await loadTags(); }
    else if (view === 'diff') { unit = (state.type || '').split(':')[2] || 'count'; await runDiff(); }
    else await run();
  } catch (error) {
    showError(error);
  }
}

function bind() {
  $('tenant').value = state.tenant || '';
  $('selector').value = state.selector || '';
  $('search').value = state.search || '';
  $('range').value = state.from ? 'custom' : (state.range || '1h');
  $('tenant').onchange = (e) => { state.tenant = e.target.value.trim(); refresh(true); };
  $('service').onchange = (e) => { state.service = e.target.value; delete state.focus; refresh(false); };
  $('profile-type').onchange = (e) => { state.type = e.target.value; delete state.focus; refresh(false); };
  $('selector').onkeydown = (e) => { if (e.key === 'Enter') { state.selector = e.target.value; refresh(false); } };
  $('range').onchange = (e) => {
    if (e.target.value === 'custom') return;
    state.range = e.target.value; delete state.from; delete state.until; refresh(true);
  };
  const absolute = () => {
    const from = Date.parse($('from').value), until = Date.parse($('until').value);
    if (from < until) { state.from = String(from); state.until = String(until); $('range').value = 'custom'; refresh(true); }
  };
  $('from').onchange = absolute; $('until').onchange = absolute;
  $('run').onclick = () => { state.selector = $('selector').value; refresh(true); };
  $('search').oninput = (e) => { state.search = e.target.value; writeUrl(); applySearch(); };
  for (const th of document.querySelectorAll('th[data-sort]')) {
    th.onclick = () => { sortKey = th.dataset.sort; state.sort = sortKey; writeUrl(); renderTable(); };
  }
  $('download').onclick = () => download().catch(showError);
  for (const a of document.querySelectorAll('#views a')) a.onclick = () => setView(a.dataset.view);
  $('tag-name').onchange = (e) => { state.tag = e.target.value; refresh(false); };
  $('sandwich-close').onclick = (e) => { e.preventDefault(); delete state.sandwich; writeUrl(); showSandwich(); };
  $('diff-run').onclick = () => {
    const ms = (id) => String(Date.parse($(id).value));
    Object.assign(state, {
      lsel: $('left-selector').value, rsel: $('right-selector').value,
      lfrom: ms('left-from'), luntil: ms('left-until'), rfrom: ms('right-from'), runtil: ms('right-until'),
    });
    refresh(false);
  };
  $('import').onchange = (e) => { const f = e.target.files[0]; if (f) openFile(f).catch(showError); e.target.value = ''; };
  $('adhoc-profile').onchange = (e) => showAdhoc(Number(e.target.value));
  $('adhoc-close').onclick = (e) => {
    e.preventDefault(); $('adhoc').hidden = true; $('timeline-panel').hidden = false; refresh(false);
  };
  $('timeline').addEventListener('zoom', (e) => {
    state.from = String(Math.round(e.detail.from)); state.until = String(Math.round(e.detail.until));
    $('range').value = 'custom'; refresh(true);
  });
}

bind();
for (const a of document.querySelectorAll('#views a')) a.classList.toggle('active', a.dataset.view === currentView());
$('main').hidden = currentView() !== 'explore'; $('timeline-panel').hidden = currentView() !== 'explore';
$('tags-panel').hidden = currentView() !== 'tags'; $('diff-panel').hidden = currentView() !== 'diff';
refresh(true);
