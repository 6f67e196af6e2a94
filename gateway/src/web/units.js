// How a value of a kind's canonical unit is shown: converted for the chosen system, in the unit
// people read (the catalog's display_unit: bpm, °C, steps — never a UCUM code), rounded to the
// kind's display_precision. Pure functions: no DOM, no storage.

// Canonical unit → its US customary counterpart. Values are stored in the canonical unit, so the
// conversion is one-way and only for showing.
const US = {
  Cel: { unit: '°F', convert: (c) => (c * 9) / 5 + 32 },
  kg: { unit: 'lb', convert: (kg) => kg / 0.45359237 },
};

// The countries that use US customary units day to day.
const US_REGIONS = new Set(['US', 'LR', 'MM']);

// 'us' or 'metric' for a BCP 47 language tag such as navigator.language ('en-US' → 'us').
export function defaultSystem(language) {
  const region = String(language || '').split(/[-_]/)[1];
  return region && US_REGIONS.has(region.toUpperCase()) ? 'us' : 'metric';
}

// kind: {unit, display_unit, display_precision} from /api/kinds. Returns how to show it: the
// unit's text, the decimals, and the conversion from the stored value.
export function presentation(kind, system) {
  const us = system === 'us' ? US[kind.unit] : undefined;
  // UCUM annotations read better without braces ("{steps}" → "steps") when a DBA set no display_unit.
  const unit = us ? us.unit : String(kind.display_unit || kind.unit).replace(/^\{(.*)\}$/, '$1');
  const precision = Number.isInteger(kind.display_precision) ? kind.display_precision : 2;
  return { unit, precision, convert: us ? us.convert : (v) => v };
}

// A number rounded to `precision` decimals, half away from zero (as SQL's round(numeric)), in
// `locale`'s digits and grouping; undefined locale: the browser's. Intl rounds the shortest
// decimal form of the double, so 36.65 becomes 36.7, not 36.6 as toFixed would have it.
export function formatNumber(value, precision, locale) {
  return new Intl.NumberFormat(locale, {
    minimumFractionDigits: precision,
    maximumFractionDigits: precision,
    roundingMode: 'halfExpand',
  }).format(value);
}

// The same rounding without grouping and with a '.' decimal point: for data attributes, which
// tests and scripts compare with SQL's round(value::numeric, precision)::text.
export function plainNumber(value, precision) {
  return formatNumber(value, precision, 'en-US').replace(/,/g, '');
}

// "72 bpm", "98.6 °F", "4,321 steps".
export function show(value, p, locale) {
  return `${formatNumber(p.convert(value), p.precision, locale)} ${p.unit}`;
}
