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
      ctx.fillStyle = colour(g.names[g.name[i]], dim);
      ctx.fillRect(left, top, Math.max(w - 0.5, 0.5), ROW - 1);
      if (w > 30) {
        ctx.fillStyle = dim ? '#8a8a8a' : '#1d1d1f';
        const label = g.names[g.name[i]];
        ctx.save(); ctx.beginPath(); ctx.rect(left, top, w - 2, ROW); ctx.clip();
        ctx.fillText(label, Math.max(left, 0) + 3, top + ROW / 2);
        ctx.restore();
      }
      this.rects.push([left, top, w, i]);
      if (depth === 0 || depth === 1) drawn.push({ name: g.names[g.name[i]], depth, left, width: w, match: this.matches(i) });
    }
    canvas.dataset.state = 'drawn';
    // What the browser tests read: the frames of the first two rows as drawn, and the time.
    window.emberscope = Object.assign(window.emberscope || {}, {
      drawn, canvasWidth: width, nodes: g.count, drawMs: performance.now() - started,
      matched: this.rects.filter(([, , , i]) => this.matches(i)).length,
    });
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
    const lines = [`total ${f(g.total[i])} (${(100 * g.total[i] / whole).toFixed(2)}%)`,
                   `self ${f(g.self[i])} (${(100 * g.self[i] / whole).toFixed(2)}%)`];
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
