// The flame graph: Pyroscope's level encoding (per level, [x offset, total, self, name] per
// node, offsets relative to the previous node's end) read into flat arrays, drawn top-down on a
// canvas. Focus (click) zooms to a subtree; search highlights matching frames.

const ROW = 18;
const FONT = '12px ui-monospace, SFMono-Regular, Menlo, monospace';

/** Nodes as flat arrays: level, x, total, self, name index, parent (-1 for roots). */
export function parseLevels(flamegraph) {
  const names = flamegraph.names || [];
  const levels = flamegraph.levels || [];
  const level = [], x = [], total = [], self = [], name = [], parent = [];
  let previous = []; // [start, end, node] of the level above
  levels.forEach((row, depth) => {
    const values = (row.values || []).map(Number);
    const current = [];
    let end = 0, p = 0;
    for (let i = 0; i + 3 < values.length; i += 4) {
      const start = end + values[i];
      const node = level.length;
      level.push(depth); x.push(start); total.push(values[i + 1]); self.push(values[i + 2]); name.push(values[i + 3]);
      while (p < previous.length && previous[p][1] <= start) p++;
      parent.push(p < previous.length && previous[p][0] <= start ? previous[p][2] : -1);
      end = start + values[i + 1];
      current.push([start, end, node]);
    }
    previous = current;
  });
  return { names, level, x, total, self, name, parent, depth: levels.length, count: level.length,
           grandTotal: Number(flamegraph.total || 0) };
}

/**
 * Pyroscope's diff encoding (7 values per node: left x delta, total, self, right x delta,
 * total, self, name) read as one graph whose widths are left + right, with each side kept.
 */
export function parseDiffLevels(diff) {
  const names = diff.names || [];
  const g = { names, level: [], x: [], total: [], self: [], name: [], parent: [], left: [], right: [],
              leftTicks: Number(diff.leftTicks || 0), rightTicks: Number(diff.rightTicks || 0) };
  let previous = [];
  (diff.levels || []).forEach((row, depth) => {
    const v = (row.values || []).map(Number);
    const current = [];
    let endL = 0, endR = 0, p = 0;
    for (let i = 0; i + 6 < v.length; i += 7) {
      const xl = endL + v[i], xr = endR + v[i + 3];
      endL = xl + v[i + 1]; endR = xr + v[i + 4];
      const node = g.level.length, start = xl + xr, total = v[i + 1] + v[i + 4];
      g.level.push(depth); g.x.push(start); g.total.push(total); g.self.push(v[i + 2] + v[i + 5]);
      g.name.push(v[i + 6]); g.left.push(v[i + 1]); g.right.push(v[i + 4]);
      while (p < previous.length && previous[p][1] <= start) p++;
      g.parent.push(p < previous.length && previous[p][0] <= start ? previous[p][2] : -1);
      current.push([start, start + total, node]);
    }
    previous = current;
  });
  g.depth = (diff.levels || []).length; g.count = g.level.length; g.grandTotal = g.leftTicks + g.rightTicks;
  return g;
}

/** The relative change of a node's share from left to right (+1 = doubled, -1 = gone). */
export function change(g, i) {
  const l = g.leftTicks ? g.left[i] / g.leftTicks : 0, r = g.rightTicks ? g.right[i] / g.rightTicks : 0;
  if (l === 0) return r === 0 ? 0 : Infinity;
  return (r - l) / l;
}

/** Children lists of a parsed graph. */
function children(g) {
  const out = Array.from({ length: g.count }, () => []);
  for (let i = 0; i < g.count; i++) if (g.parent[i] >= 0) out[g.parent[i]].push(i);
  return out;
}

/** A nested tree { name, total, self, children: Map } as a parsed graph (names sorted). */
function fromTree(root) {
  const names = [], index = new Map();
  const id = (n) => { if (!index.has(n)) { index.set(n, names.length); names.push(n); } return index.get(n); };
  const g = { names, level: [], x: [], total: [], self: [], name: [], parent: [], depth: 0 };
  const walk = (node, depth, x, parent) => {
    const me = g.level.length;
    g.level.push(depth); g.x.push(x); g.total.push(node.total); g.self.push(node.self);
    g.name.push(id(node.name)); g.parent.push(parent); g.depth = Math.max(g.depth, depth + 1);
    let cx = x + node.self;
    for (const child of [...node.children.values()].sort((a, b) => (a.name < b.name ? -1 : 1))) {
      walk(child, depth + 1, cx, me); cx += child.total;
    }
  };
  walk(root, 0, 0, -1);
  g.count = g.level.length; g.grandTotal = root.total;
  return g;
}

/**
 * The sandwich of function `fname`: its callees (every top-most call of it, merged) and its
 * callers (the stacks that lead to it, inverted: the function at the root, its callers below).
 */
export function sandwich(g, fname) {
  const kids = children(g);
  const node = (name) => ({ name, total: 0, self: 0, children: new Map() });
  const child = (parent, name) => {
    let c = parent.children.get(name);
    if (!c) { c = node(name); parent.children.set(name, c); }
    return c;
  };
  const callees = node(fname), callers = node(fname);
  const addSubtree = (into, i) => {
    into.total += g.total[i]; into.self += g.self[i];
    for (const k of kids[i]) addSubtree(child(into, g.names[g.name[k]]), k);
  };
  for (let i = 0; i < g.count; i++) {
    if (g.level[i] === 0 || g.names[g.name[i]] !== fname) continue;
    let nested = false;
    for (let a = g.parent[i]; a >= 0; a = g.parent[a]) if (g.names[g.name[a]] === fname) { nested = true; break; }
    if (nested) continue;
    callees.total += g.total[i]; callees.self += g.self[i];
    for (const k of kids[i]) addSubtree(child(callees, g.names[g.name[k]]), k);
    callers.total += g.total[i];
    let at = callers;
    for (let a = g.parent[i]; a >= 0 && g.level[a] > 0; a = g.parent[a]) {
      at = child(at, g.names[g.name[a]]); at.total += g.total[i];
    }
    at.self += g.total[i];
  }
  callers.self = callers.total - [...callers.children.values()].reduce((s, c) => s + c.total, 0);
  return { callers: fromTree(callers), callees: fromTree(callees) };
}

/** Per function: self, and total counted once per stack (recursion is not added twice). */
export function topTable(graph) {
  const rows = new Map();
  for (let i = 0; i < graph.count; i++) {
    if (graph.level[i] === 0) continue; // the synthetic "total" root
    const n = graph.name[i];
    let row = rows.get(n);
    if (!row) { row = { name: graph.names[n], self: 0, total: 0 }; rows.set(n, row); }
    row.self += graph.self[i];
    let recursive = false;
    for (let a = graph.parent[i]; a >= 0; a = graph.parent[a]) {
      if (graph.name[a] === n) { recursive = true; break; }
    }
    if (!recursive) row.total += graph.total[i];
  }
  return [...rows.values()];
}

/** A colour per package (what comes before the last '.', '/' or '::'), stable across views. */
function colour(name, dim) {
  const cut = Math.max(name.lastIndexOf('.'), name.lastIndexOf('/'), name.lastIndexOf('::'));
  const pkg = cut > 0 ? name.slice(0, cut) : name;
  let h = 2166136261;
  for (let i = 0; i < pkg.length; i++) { h ^= pkg.charCodeAt(i); h = Math.imul(h, 16777619); }
  const hue = 10 + ((h >>> 0) % 50); // warm: red to yellow
  const light = 55 + ((h >>> 8) % 15);
  return dim ? `hsl(${hue}, 15%, 86%)` : `hsl(${hue}, 75%, ${light}%)`;
}

/** Red for more, green for less, grey for no change; saturation by the size of the change. */
export function diffColour(delta, dim) {
  if (dim) return 'hsl(0, 0%, 88%)';
  if (!Number.isFinite(delta)) return 'hsl(0, 85%, 50%)';
  const strength = Math.min(1, Math.abs(delta));
  if (strength < 0.01) return 'hsl(0, 0%, 78%)';
  const hue = delta > 0 ? 0 : 120;
  return `hsl(${hue}, ${30 + 55 * strength}%, ${80 - 30 * strength}%)`;
}

export class FlameGraph {
  constructor(canvas, tooltip, { unit, onFocus }) {
    this.canvas = canvas; this.tooltip = tooltip; this.unit = unit; this.onFocus = onFocus;
    this.graph = null; this.focus = -1; this.search = ''; this.rects = [];
    canvas.addEventListener('click', (e) => this.click(e));
    canvas.addEventListener('mousemove', (e) => this.hover(e));
    canvas.addEventListener('mouseleave', () => { this.tooltip.hidden = true; });
    new ResizeObserver(() => this.graph && this.draw()).observe(canvas.parentElement);
  }

  set(graph, format) { this.graph = graph; this.format = format; this.focus = -1; this.draw(); }

  setFocus(node) { this.focus = node; this.draw(); }

  setSearch(text) { this.search = text.toLowerCase(); this.draw(); }

  matches(i) { return this.search !== '' && this.graph.names[this.graph.name[i]].toLowerCase().includes(this.search); }

  /** The sum of the topmost matching frames: the share a search selects. */
  searchTotal() {
    if (!this.graph || !this.search) return 0;
    let sum = 0;
    for (let i = 0; i < this.graph.count; i++) {
      if (!this.matches(i)) continue;
      let covered = false;
      for (let a = this.graph.parent[i]; a >= 0; a = this.graph.parent[a]) if (this.matches(a)) { covered = true; break; }
      if (!covered) sum += this.graph.total[i];
    }
    return sum;
  }

  draw() {
    const started = performance.now();
    const g = this.graph, canvas = this.canvas;
    const ratio = window.devicePixelRatio || 1;
    const width = canvas.parentElement.clientWidth;
    const rootLevel = this.focus >= 0 ? g.level[this.focus] : 0;
    const [x0, span] = this.focus >= 0 ? [g.x[this.focus], g.total[this.focus]] : [0, g.grandTotal || 1];
    const rows = Math.max(1, g.depth - rootLevel);
    canvas.style.height = `${rows * ROW}px`;
    canvas.width = Math.round(width * ratio); canvas.height = Math.round(rows * ROW * ratio);
    const ctx = canvas.getContext('2d');
    ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
    ctx.clearRect(0, 0, width, rows * ROW);
    ctx.font = FONT; ctx.textBaseline = 'middle';
    const scale = width / span;
    this.rects = [];
    const drawn = [];
    for (let i = 0; i < g.count; i++) {
      const depth = g.level[i] - rootLevel;
      if (depth < 0) continue;
      const left = (g.x[i] - x0) * scale, w = g.total[i] * scale;
      if (left + w <= 0 || left >= width || w < 0.5) continue;
      const top = depth * ROW;
      const dim = this.search !== '' && !this.matches(i);
      ctx.fillStyle = g.left ? diffColour(change(g, i), dim) : colour(g.names[g.name[i]], dim);
      ctx.fillRect(left, top, Math.max(w - 0.5, 0.5), ROW - 1);
      if (w > 30) {
        ctx.fillStyle = dim ? '#8a8a8a' : '#1d1d1f';
        const label = g.names[g.name[i]];
        ctx.save(); ctx.beginPath(); ctx.rect(left, top, w - 2, ROW); ctx.clip();
        ctx.fillText(label, Math.max(left, 0) + 3, top + ROW / 2);
        ctx.restore();
      }
      this.rects.push([left, top, w, i]);
      if (depth <= 2) {
        const d = { name: g.names[g.name[i]], depth, left, width: w, match: this.matches(i) };
        if (g.left) d.change = change(g, i);
        drawn.push(d);
      }
    }
    canvas.dataset.state = 'drawn';
    // What the browser tests read: the frames of the first two rows as drawn, and the time.
    const summary = {
      drawn, canvasWidth: width, nodes: g.count, drawMs: performance.now() - started,
      matched: this.rects.filter(([, , , i]) => this.matches(i)).length,
    };
    const shared = window.emberscope || {};
    shared.canvases = { ...(shared.canvases || {}), [canvas.id || 'canvas']: summary };
    shared.graphs = { ...(shared.graphs || {}), [canvas.id || 'canvas']: { graph: g, focus: this.focus } };
    window.emberscope = canvas.id === 'flamegraph' ? Object.assign(shared, summary) : shared;
  }

  nodeAt(e) {
    const r = this.canvas.getBoundingClientRect();
    const px = e.clientX - r.left, py = e.clientY - r.top;
    for (let k = this.rects.length - 1; k >= 0; k--) {
      const [left, top, w, i] = this.rects[k];
      if (px >= left && px < left + w && py >= top && py < top + ROW) return i;
    }
    return -1;
  }

  click(e) {
    const i = this.nodeAt(e);
    if (i < 0) return;
    this.focus = i === this.focus ? -1 : i;
    this.draw();
    this.onFocus(this.focus);
  }

  hover(e) {
    const i = this.nodeAt(e);
    if (i < 0) { this.tooltip.hidden = true; return; }
    const g = this.graph, whole = g.grandTotal || 1;
    const f = this.format;
    this.tooltip.innerHTML = '';
    const b = document.createElement('b'); b.textContent = g.names[g.name[i]];
    let lines = [`total ${f(g.total[i])} (${(100 * g.total[i] / whole).toFixed(2)}%)`,
                 `self ${f(g.self[i])} (${(100 * g.self[i] / whole).toFixed(2)}%)`];
    if (g.left) {
      const share = (v, t) => (t ? (100 * v / t).toFixed(2) : '0.00');
      const d = change(g, i);
      lines = [`baseline ${f(g.left[i])} (${share(g.left[i], g.leftTicks)}%)`,
               `comparison ${f(g.right[i])} (${share(g.right[i], g.rightTicks)}%)`,
               `change ${Number.isFinite(d) ? `${d > 0 ? '+' : ''}${(100 * d).toFixed(1)}%` : 'new'}`];
    }
    this.tooltip.append(b);
    for (const line of lines) { const d = document.createElement('div'); d.textContent = line; this.tooltip.append(d); }
    this.tooltip.style.left = `${e.clientX + 12}px`; this.tooltip.style.top = `${e.clientY + 12}px`;
    this.tooltip.hidden = false;
  }

  /** Names from the root to the focused node. */
  path() {
    const out = [];
    for (let a = this.focus; a >= 0; a = this.graph.parent[a]) out.unshift([a, this.graph.names[this.graph.name[a]]]);
    return out;
  }
}
