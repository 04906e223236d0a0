// Field values cut and cleaned in the browser, so that one bad value never costs an event.

// The first `max` characters, cut between code points: never inside a surrogate pair, whose
// lone half the collector would refuse as invalid Unicode.
export var cut = (s, max) => [...s].slice(0, max).join('')

// A user id: a non-empty string or a finite number, trimmed, of at most 128 characters (the
// collector refuses every event carrying a longer one). Anything else is no id.
export var userId = (v) =>
  (v = typeof v == 'number' ? isFinite(v) && '' + v : typeof v == 'string' && v.trim()) && [...v].length < 129 ? v : void 0
