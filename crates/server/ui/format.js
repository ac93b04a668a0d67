// Values in human form, by the unit of the profile type.

const SCALES = {
  nanoseconds: [[3600e9, 'h'], [60e9, 'min'], [1e9, 's'], [1e6, 'ms'], [1e3, 'µs'], [1, 'ns']],
  microseconds: [[3600e6, 'h'], [60e6, 'min'], [1e6, 's'], [1e3, 'ms'], [1, 'µs']],
  milliseconds: [[3600e3, 'h'], [60e3, 'min'], [1e3, 's'], [1, 'ms']],
  bytes: [[2 ** 40, 'TiB'], [2 ** 30, 'GiB'], [2 ** 20, 'MiB'], [2 ** 10, 'KiB'], [1, 'B']],
  count: [[1e9, 'G'], [1e6, 'M'], [1e3, 'k'], [1, '']],
};

export function human(value, unit) {
  const scales = SCALES[unit] || SCALES.count;
  const abs = Math.abs(value);
  for (const [size, suffix] of scales) {
    if (abs >= size) {
      const scaled = value / size;
      const text = Number.isInteger(scaled) ? String(scaled) : scaled.toFixed(abs / size >= 100 ? 0 : 2);
      return unit === 'count' || !SCALES[unit] ? `${text}${suffix}` : `${text} ${suffix}`;
    }
  }
  return String(value);
}

export function percent(part, whole) {
  return whole ? `${((100 * part) / whole).toFixed(2)}%` : '0%';
}
