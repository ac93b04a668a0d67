// The time series of the selection on a canvas; dragging across it selects a new range (a
// `zoom` event on the canvas with { from, until } in milliseconds).

export function drawTimeline(canvas, series, start, end, format) {
  const ratio = window.devicePixelRatio || 1;
  const width = canvas.clientWidth, height = canvas.clientHeight;
  canvas.width = Math.round(width * ratio); canvas.height = Math.round(height * ratio);
  const ctx = canvas.getContext('2d');
  ctx.setTransform(ratio, 0, 0, ratio, 0, 0);
  ctx.clearRect(0, 0, width, height);
  const points = series.flatMap((s) => s.points || []);
  const max = Math.max(1, ...points.map((p) => Number(p.value)));
  const x = (t) => ((t - start) / Math.max(1, end - start)) * width;
  const y = (v) => height - 14 - (v / max) * (height - 24);
  ctx.font = '11px system-ui'; ctx.fillStyle = '#6b6b73';
  ctx.fillText(format(max), 4, 10);
  ctx.fillText(new Date(start).toLocaleString(), 4, height - 2);
  const right = new Date(end).toLocaleString();
  ctx.fillText(right, width - ctx.measureText(right).width - 4, height - 2);
  series.forEach((s, k) => {
    ctx.strokeStyle = k === 0 ? '#d9480f' : `hsl(${(k * 67) % 360}, 60%, 45%)`;
    ctx.fillStyle = ctx.strokeStyle;
    ctx.beginPath();
    (s.points || []).forEach((p, i) => {
      const px = x(Number(p.timestamp)), py = y(Number(p.value));
      if (i === 0) ctx.moveTo(px, py); else ctx.lineTo(px, py);
      ctx.fillRect(px - 1.5, py - 1.5, 3, 3);
    });
    ctx.stroke();
  });
  canvas.dataset.points = String(points.length);
  canvas.dataset.start = String(start); canvas.dataset.end = String(end);
  if (canvas.dataset.bound) return;
  canvas.dataset.bound = '1';
  let dragFrom = null;
  canvas.addEventListener('mousedown', (e) => { dragFrom = e.offsetX; });
  canvas.addEventListener('mouseup', (e) => {
    if (dragFrom === null) return;
    const [a, b] = [Math.min(dragFrom, e.offsetX), Math.max(dragFrom, e.offsetX)];
    dragFrom = null;
    if (b - a < 4) return;
    const span = Number(canvas.dataset.end) - Number(canvas.dataset.start);
    const at = (px) => Number(canvas.dataset.start) + (px / canvas.clientWidth) * span;
    canvas.dispatchEvent(new CustomEvent('zoom', { detail: { from: at(a), until: at(b) } }));
  });
}
