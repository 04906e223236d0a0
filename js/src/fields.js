// Field values cut and cleaned in the browser, so that one bad value never costs an event.

// The first `max` characters, cut between code points: never inside a surrogate pair, whose
// lone half the collector would refuse as invalid Unicode.
export var cut = (s, max) => [...s].slice(0, max).join('')

// A user id: a non-empty string or a finite number, trimmed, of at most 128 characters (the
// collector refuses every event carrying a longer one). Anything else is no id.
export var userId = (v) =>
  (v = typeof v == 'number' ? isFinite(v) && '' + v : typeof v == 'string' && v.trim()) && [...v].length < 129 ? v : void 0

// Props: a flat map of strings (cut to 1,024 characters), finite numbers and booleans, at most
// 50 entries with keys of up to 128 characters. Anything else (null, arrays, nested objects,
// NaN) is left out, so the event is kept without it; props that are not an object are none.
export var clean = (p, out = {}) => {
  if (Object(p) === p && !Array.isArray(p)) {
    for (var [k, v] of Object.entries(p).slice(0, 50))
      k.length < 129 &&
        (typeof v == 'string'
          ? (out[k] = cut(v, 1024))
          : (typeof v == 'boolean' || (typeof v == 'number' && isFinite(v))) && (out[k] = v))
    return out
  }
}

// A sale value: a number, or a numeric string such as '49.90', of at most 1e15; else none.
export var number = (v) => (typeof (v = typeof v == 'string' ? +v : v) == 'number' && v * v <= 1e30 ? v : void 0)
