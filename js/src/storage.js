// First-party storage under "funnel_<key>": localStorage, or where that is blocked a cookie
// that lasts a year. kv(key) reads (undefined or null when absent), kv(key, value) writes
// and returns the value.
export var kv = (key, value) => {
  key = 'funnel_' + key
  try {
    return value == null ? localStorage[key] : (localStorage[key] = value)
  } catch (e) {
    return value == null
      ? (document.cookie.match(key + '=([^;]*)') || 0)[1]
      : (document.cookie = key + '=' + value + ';max-age=31536000;path=/')
  }
}
