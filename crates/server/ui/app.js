// The Explore view: the selection lives in the URL (share a link, get the same view), the
// time series of the selection on top (drag to zoom), the top table and the flame graph below.

import { adhoc, call, mergedPprof } from './api.js';
import { FlameGraph, parseLevels, topTable } from './flamegraph.js';
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

function selector() {
  const extra = (state.selector || '').trim().replace(/^\{|\}$/g, '').trim();
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
  const names = await call('LabelNames', { start, end, matchers: [selector()] }, tenant).catch(() => ({}));
  $('label-hints').replaceChildren(...(names.names || []).filter((n) => !n.startsWith('__'))
    .map((n) => new Option(`{${n}=""}`)));
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

function renderTable() {
  const whole = flame.graph ? flame.graph.grandTotal : 0;
  const rows = [...tableRows].sort((a, b) => (sortKey === 'name' ? a.name.localeCompare(b.name) : b[sortKey] - a[sortKey]));
  const search = (state.search || '').toLowerCase();
  const body = $('top').tBodies[0];
  body.replaceChildren(...rows.filter((r) => !search || r.name.toLowerCase().includes(search)).slice(0, 500).map((r) => {
    const tr = document.createElement('tr');
    if (search) tr.className = 'match';
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
  all.onclick = () => { flame.setFocus(-1); breadcrumbs(); };
  const crumbs = [all];
  for (const [node, name] of flame.focus >= 0 ? flame.path() : []) {
    const a = document.createElement('a'); a.textContent = name.length > 40 ? `…${name.slice(-40)}` : name;
    a.onclick = () => { flame.setFocus(node); breadcrumbs(); };
    crumbs.push(a);
  }
  nav.replaceChildren(...crumbs);
}

const flame = new FlameGraph($('flamegraph'), $('tooltip'), { unit, onFocus: () => breadcrumbs() });

async function refresh(reloadChoices) {
  try {
    if (reloadChoices) await loadChoices();
    await run();
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
  $('service').onchange = (e) => { state.service = e.target.value; refresh(false); };
  $('profile-type').onchange = (e) => { state.type = e.target.value; refresh(false); };
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
refresh(true);
