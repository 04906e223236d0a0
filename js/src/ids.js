// A random version-4 UUID in every context: each object URL carries a fresh one (unlike
// crypto.randomUUID, this needs no secure context, and it costs a fraction of the bytes).
export var uuid = () => URL.createObjectURL(new Blob()).slice(-36)
