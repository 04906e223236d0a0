// First-party storage under "funnel_<key>": localStorage, or where that is blocked a cookie
// that lasts a year, its value URI-encoded so that ';' and '=' survive. kv(key) reads
// (undefined when absent or not decodable), kv(key, value) writes. `local` keeps a key out
// of cookies (the backlog would not fit in one): without localStorage it is not kept.
export var kv = (key, value, local) => {
  key = 'funnel_' + key
  try {
    return value == null ? localStorage[key] : (localStorage[key] = value)
  } catch {
    try {
      return local
        ? 0
        : value == null
          ? document.cookie.match('(^|; )' + key + '=([^;]*)')[2]
          : (document.cookie = key + '=' + value + ';max-age=31536000;path=/')
    } catch {}
  }
}
