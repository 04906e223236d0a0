// Field values cut and cleaned in the browser, so that one bad value never costs an event.

// The first `max` characters, cut between code points: never inside a surrogate pair, whose
// lone half the collector would refuse as invalid Unicode.
export var cut = (s, max) => [...s].slice(0, max).join('')
