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
