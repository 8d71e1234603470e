// msgpack for the ES modules: a thin wrapper over the vendored @msgpack/msgpack
// browser build (static/vendor/msgpack.min.js, loaded by index.html as a
// classic script, which defines the global `MessagePack`).

function lib() {
  const mp = globalThis.MessagePack;
  if (!mp) throw new Error("static/vendor/msgpack.min.js is not loaded");
  return mp;
}

/** Encode one client message (an array) to bytes. */
export function encode(message) {
  return lib().encode(message);
}

/** Decode one server frame (ArrayBuffer or Uint8Array) to its array. */
export function decode(data) {
  return lib().decode(data instanceof Uint8Array ? data : new Uint8Array(data));
}
