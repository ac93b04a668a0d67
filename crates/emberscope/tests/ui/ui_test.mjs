// Drives the emberscope UI in headless Chromium: `node ui_test.mjs URL SCREENSHOT_DIR`.
// Prints one JSON object of what the page shows, for crates/emberscope/tests/ui.rs to check.
import { chromium } from 'playwright-core';

const [url, shots] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
         '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});
const out = {};
try {
  const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
  const requests = [];
  page.on('request', (r) => requests.push(r.url()));
  await page.goto(url);
  await page.waitForSelector('#flamegraph[data-state=drawn]', { timeout: 20000 });
  out.first = await page.evaluate(() => ({ ...window.emberscope }));
  out.error = await page.evaluate(() => document.getElementById('error').hidden ? '' : document.getElementById('error').textContent);
  out.tableRows = await page.$$eval('#top tbody tr', (rows) => rows.slice(0, 5).map((r) => [...r.cells].map((c) => c.textContent)));
  out.labelHints = await page.$$eval('#label-hints option', (o) => o.map((x) => x.value));
  out.timelinePoints = Number(await page.getAttribute('#timeline', 'data-points'));
  await page.screenshot({ path: `${shots}/explore.png`, fullPage: true });

  // Tooltip: hovering the widest root frame names it with its share and value in human units.
  {
    const root = out.first.drawn.filter((d) => d.depth === 1).sort((a, b) => b.width - a.width)[0];
    const box = await page.locator('#flamegraph').boundingBox();
    await page.mouse.move(box.x + root.left + root.width / 2, box.y + 18 + 9);
    await page.waitForSelector('#tooltip:not([hidden])');
    out.tooltip = await page.textContent('#tooltip');
  }
  // Dragging across the time series zooms the range (the URL gets the new from/until).
  {
    const box = await page.locator('#timeline').boundingBox();
    const before = await page.evaluate(() => location.search);
    await page.mouse.move(box.x + box.width * 0.5, box.y + 40);
    await page.mouse.down();
    await page.mouse.move(box.x + box.width * 0.98, box.y + 40, { steps: 5 });
    await page.mouse.up();
    await page.waitForFunction((b) => location.search !== b, before);
    out.zoom = { before, after: await page.evaluate(() => location.search) };
    await page.goto(url);
    await page.waitForSelector('#flamegraph[data-state=drawn]');
  }

  // Search: frames dimmed or highlighted, the share printed, the table filtered.
  await page.fill('#search', process.env.SEARCH || 'runtime');
  await page.waitForFunction(() => document.getElementById('search-share').textContent !== '');
  out.search = await page.evaluate(() => ({ matched: window.emberscope.matched,
    share: document.getElementById('search-share').textContent,
    rows: document.querySelectorAll('#top tbody tr').length, url: location.search }));
  await page.screenshot({ path: `${shots}/search.png`, fullPage: true });
  await page.fill('#search', '');

  // Focus: click the widest frame of the second row; the breadcrumbs name it.
  const widest = out.first.drawn.filter((d) => d.depth === 1).sort((a, b) => b.width - a.width)[0];
  const box = await page.locator('#flamegraph').boundingBox();
  await page.mouse.click(box.x + widest.left + widest.width / 2, box.y + 18 + 9);
  await page.waitForFunction((name) => document.getElementById('breadcrumbs').textContent.includes(name.slice(-20)), widest.name);
  out.focus = await page.evaluate(() => ({ crumbs: [...document.querySelectorAll('#breadcrumbs a')].map((a) => a.textContent),
    drawn: window.emberscope.drawn }));
  await page.screenshot({ path: `${shots}/focus.png`, fullPage: true });
  // The focus is in the URL: a reload (a shared link) shows the same frame focused.
  out.focusUrl = await page.evaluate(() => location.search);
  await page.reload();
  await page.waitForSelector('#flamegraph[data-state=drawn]');
  out.focusAfterReload = await page.evaluate(() => [...document.querySelectorAll('#breadcrumbs a')].map((a) => a.textContent));

  // Focus inside a cut graph: the page asks again for the stacks through the frame, and the
  // frame's subtree gets the node budget to itself.
  if (process.env.DIFF_QUERY) {
    await page.goto(`${new URL(url).origin}/?service=deep-app&maxNodes=10&${process.env.DIFF_QUERY}`);
    await page.waitForSelector('#flamegraph[data-state=drawn]');
    const descendants = (name) => {
      const { graph: g, focus } = window.emberscope.graphs.flamegraph;
      const node = name === null ? focus : [...Array(g.count).keys()].find((i) => g.names[g.name[i]] === name);
      let n = 0;
      for (let i = 0; i < g.count; i++) for (let a = i; a >= 0; a = g.parent[a]) if (a === node) { n++; break; }
      return n;
    };
    const before = await page.evaluate(`(${descendants})("small")`);
    const small = (await page.evaluate(() => window.emberscope.drawn)).find((d) => d.name === 'small');
    const frame = await page.locator('#flamegraph').boundingBox();
    await page.mouse.click(frame.x + small.left + small.width / 2, frame.y + 2 * 18 + 9);
    await page.waitForFunction(() => window.emberscope.requeried, null, { timeout: 10000 });
    out.requery = { before, after: await page.evaluate(`(${descendants})(null)`),
      path: await page.evaluate(() => window.emberscope.requeried),
      crumbs: await page.$$eval('#breadcrumbs a', (a) => a.map((x) => x.textContent)) };
    await page.screenshot({ path: `${shots}/focus-requery.png`, fullPage: true });
    await page.goto(url);
    await page.waitForSelector('#flamegraph[data-state=drawn]');
  }

  // Sandwich: a function of the table, its callers and callees.
  await page.fill('#search', process.env.SANDWICH || 'runtime.kevent');
  await page.click('#top tbody tr');
  await page.waitForSelector('#sandwich:not([hidden])');
  await page.waitForFunction(() => window.emberscope.canvases?.callers && window.emberscope.canvases?.callees);
  out.sandwich = await page.evaluate(() => ({ callers: window.emberscope.canvases.callers.drawn,
    callees: window.emberscope.canvases.callees.drawn, url: location.search }));
  await page.screenshot({ path: `${shots}/sandwich.png`, fullPage: true });
  await page.click('#sandwich-close');
  await page.fill('#search', '');

  // Download: the selection as a pprof file.
  const [download] = await Promise.all([page.waitForEvent('download'), page.click('#download')]);
  out.download = `${shots}/download.pb.gz`;
  await download.saveAs(out.download);
  out.downloadName = download.suggestedFilename();

  // Open a file without storing it: its profiles to choose from, drawn as the database's are.
  if (process.env.IMPORT_FILE) {
    await page.evaluate(() => { document.getElementById('flamegraph').dataset.state = 'stale'; });
    await page.setInputFiles('#import', process.env.IMPORT_FILE);
    await page.waitForSelector('#adhoc:not([hidden])', { timeout: 10000 });
    await page.waitForSelector('#flamegraph[data-state=drawn]');
    out.adhoc = await page.evaluate(() => ({
      options: [...document.querySelectorAll('#adhoc-profile option')].map((o) => o.textContent),
      drawn: window.emberscope.drawn, nodes: window.emberscope.nodes,
      firstRow: document.querySelector('#top tbody tr td')?.textContent,
    }));
    await page.screenshot({ path: `${shots}/open-file.png`, fullPage: true });
    await page.click('#adhoc-close');
    await page.waitForSelector('#adhoc[hidden]', { state: 'attached' });
  }

  // A bad selector: the API's message appears, not a blank panel.
  await page.fill('#selector', '{not valid');
  await page.press('#selector', 'Enter');
  await page.waitForSelector('#error:not([hidden])', { timeout: 10000 });
  out.badSelector = await page.textContent('#error');

  // Drawing time for large graphs, in this browser: synthetic levels of N nodes.
  out.drawTimes = await page.evaluate(async () => {
    const { FlameGraph, parseLevels } = await import('/ui/flamegraph.js');
    const times = {};
    for (const n of [8192, 50000]) {
      // A balanced tree of fan-out 8: level k holds 8^k nodes, each of total 8^(depth-k).
      const levels = []; let made = 0, width = 1;
      while (made < n) {
        const count = Math.min(width, n - made), total = Math.floor(1e9 / width);
        const values = [];
        for (let i = 0; i < count; i++) values.push(0, total, levels.length + 1 < 6 ? 0 : total, i % 500);
        levels.push({ values }); made += count; width *= 8;
      }
      const names = Array.from({ length: 500 }, (_, i) => `pkg${i % 37}/sub.Function${i}`);
      const canvas = document.createElement('canvas');
      const holder = document.createElement('div'); holder.style.width = '1200px'; holder.append(canvas);
      document.body.append(holder);
      const tip = document.createElement('div');
      const fg = new FlameGraph(canvas, tip, { unit: 'nanoseconds', onFocus() {} });
      const t0 = performance.now();
      const graph = parseLevels({ names, levels, total: 1e9 });
      fg.set(graph, String);
      times[n] = { nodes: graph.count, ms: performance.now() - t0 };
      holder.remove();
    }
    return times;
  });
  // Tag explorer and comparison on a second service (two versions of one program).
  if (process.env.DIFF_QUERY) {
    const base = new URL(url).origin;
    await page.goto(`${base}/?service=diff-app&view=tags&tag=version&${process.env.DIFF_QUERY}`);
    await page.waitForSelector('#tags tbody tr');
    out.tags = await page.$$eval('#tags tbody tr', (rows) => rows.map((r) => [r.dataset.value, r.cells[3].textContent]));
    await page.screenshot({ path: `${shots}/tags.png`, fullPage: true });
    await page.evaluate(() => { document.getElementById('flamegraph').dataset.state = 'stale'; });
    await page.click('#tags tbody tr[data-value="2"]');
    await page.waitForSelector('#flamegraph[data-state=drawn]');
    out.tagClick = await page.evaluate(() => ({ selector: document.getElementById('selector').value,
      drawn: window.emberscope.canvases.flamegraph.drawn, url: location.search }));
    await page.goto(`${base}/?service=diff-app&view=diff&lsel=${encodeURIComponent('{version="1"}')}&rsel=${encodeURIComponent('{version="2"}')}&${process.env.DIFF_QUERY}`);
    await page.waitForSelector('#diffgraph[data-state=drawn]');
    out.diff = await page.evaluate(() => window.emberscope.canvases.diffgraph.drawn);
    out.sides = await page.evaluate(() => ({ left: window.emberscope.canvases.leftgraph,
      right: window.emberscope.canvases.rightgraph }));
    await page.screenshot({ path: `${shots}/compare.png`, fullPage: true });
  }
  out.offsite = requests.filter((r) => !r.startsWith(new URL(url).origin));
} finally {
  await browser.close();
}
console.log(JSON.stringify(out));
