// A random version-4 UUID in every context: each object URL carries a fresh one (unlike
// crypto.randomUUID, this needs no secure context, and it costs a fraction of the bytes).
// The URL is revoked at once, so nothing stays registered.
export var uuid = (url = URL.createObjectURL(new Blob())) => (URL.revokeObjectURL(url), url.slice(-36))
