// Calls to emberscope's Connect API (JSON), as Grafana's Pyroscope data source makes them.

export class ApiError extends Error {}

export async function call(method, body, tenant) {
  const headers = { 'Content-Type': 'application/json' };
  if (tenant) headers['X-Scope-OrgID'] = tenant;
  const response = await fetch(`/querier.v1.QuerierService/${method}`, {
    method: 'POST', headers, body: JSON.stringify(body),
  });
  const text = await response.text();
  let json = {};
  try { json = text ? JSON.parse(text) : {}; } catch { json = { message: text }; }
  if (!response.ok) {
    throw new ApiError(`${method}: ${json.message || response.statusText} (HTTP ${response.status})`);
  }
  return json;
}

/** A protobuf varint (values up to 2^53). */
function varint(value, out) {
  let v = value;
  while (v >= 128) { out.push((v % 128) + 128); v = Math.floor(v / 128); }
  out.push(v);
}

function field(tag, bytes, out) { out.push(tag); varint(bytes.length, out); out.push(...bytes); }

/** The merged pprof of a selection (`SelectMergeProfile` over Connect's proto codec), gzip. */
export async function mergedPprof({ profileTypeID, labelSelector, start, end }, tenant) {
  const text = new TextEncoder();
  const body = [];
  field(0x0a, text.encode(profileTypeID), body);
  field(0x12, text.encode(labelSelector), body);
  body.push(0x18); varint(start, body);
  body.push(0x20); varint(end, body);
  const headers = { 'Content-Type': 'application/proto' };
  if (tenant) headers['X-Scope-OrgID'] = tenant;
  const response = await fetch('/querier.v1.QuerierService/SelectMergeProfile', {
    method: 'POST', headers, body: new Uint8Array(body),
  });
  if (!response.ok) {
    let message = response.statusText;
    try { message = (await response.json()).message || message; } catch { /* not JSON */ }
    throw new ApiError(`SelectMergeProfile: ${message} (HTTP ${response.status})`);
  }
  const gzip = response.body.pipeThrough(new CompressionStream('gzip'));
  return new Response(gzip).blob();
}

/** Flame graphs of a file, without storing it. */
export async function adhoc(file) {
  const response = await fetch('/api/adhoc/flamegraph', { method: 'POST', body: file });
  const text = await response.text();
  let json = {};
  try { json = JSON.parse(text); } catch { json = { message: text }; }
  if (!response.ok) throw new ApiError(`${file.name}: ${json.message || response.statusText} (HTTP ${response.status})`);
  return json.profiles || [];
}
