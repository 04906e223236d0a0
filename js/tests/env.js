// A scripted page for running the built snippet under `node --test`: just enough of window,
// document, navigator, location, storage and timers for t.js, with a clock the test moves and
// a record of every request the snippet makes. Real-browser behaviour is covered by the
// Chromium tests in tests/browser/; these pin the logic down quickly and exhaustively.
import { readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

var here = dirname(fileURLToPath(import.meta.url))
export var DIST = join(here, '..', 'dist', 't.js')

// CSS.escape as specified (CSSOM), for the selector builder outside a browser.
export var cssEscape = (s) =>
  String(s).replace(/[\0-\x1f\x7f]|^-?\d|^-$|[^\w-\u0080-\uffff]/g, (c, i) =>
    c == '\0' ? '\ufffd' : /[\0-\x1f\x7f]|\d/.test(c) ? '\\' + c.charCodeAt(0).toString(16) + ' ' : '\\' + c
  )

// Matches the selector lists the snippet uses: tags, [attr] and [attr=value], comma-separated.
var matches = (el, selector) =>
  selector.split(',').some((part) => {
    var m = part.trim().match(/^([a-z]*)(?:\[([\w-]+)(?:=([\w-]+))?\])?$/)
    if (!m) throw new Error('unsupported selector ' + part)
    var [, tag, attr, value] = m
    if (tag && el.localName != tag) return false
    if (attr && (el.getAttribute(attr) == null || (value != null && el.getAttribute(attr) != value))) return false
    return true
  })

// An element: el('a', {id: 'cta', class: 'btn cta', href: 'https://x/y'}, 'text', parent).
// `own` sets properties that shadow the usual ones, as a form's named controls do (a form
// with <input name=id> has form.id === that input).
export var el = (tag, attrs = {}, text = '', parent = null, own = {}) => {
  var node = {
    localName: tag,
    tagName: tag.toUpperCase(),
    parentElement: parent,
    textContent: text,
    attributes: Object.entries(attrs).map(([name, value]) => ({ name, value: String(value) })),
    getAttribute: (name) => (name in attrs ? String(attrs[name]) : null),
    get id() {
      return attrs.id || ''
    },
    get classList() {
      return (attrs.class || '').split(/\s+/).filter(Boolean)
    },
    get dataset() {
      var out = {}
      for (var [k, v] of Object.entries(attrs))
        k.startsWith('data-') && (out[k.slice(5).replace(/-(\w)/g, (_, c) => c.toUpperCase())] = String(v))
      return out
    },
    matches: (selector) => matches(node, selector),
    closest(selector) {
      for (var n = node; n; n = n.parentElement) if (matches(n, selector)) return n
      return null
    },
  }
  // Form controls: `value` is what was typed or chosen (a button's is its value attribute).
  // Labelable controls have `labels` (a NodeList in a browser).
  if (/^(input|button|textarea|select)$/.test(tag)) (node.value = attrs.value ?? text), (node.labels = [])
  if (tag == 'input' || tag == 'button') node.type = (attrs.type || (tag == 'input' ? 'text' : 'submit')).toLowerCase()
  if (tag == 'a') {
    var url = attrs.href == null ? null : new URL(attrs.href, 'https://shop.example.com/')
    node.href = url ? url.href : ''
    node.protocol = url ? url.protocol : ':'
    node.host = url ? url.host : ''
  }
  for (var [k, v] of Object.entries(own)) Object.defineProperty(node, k, { value: v, configurable: true })
  return node
}

// localStorage as a plain map; `broken` makes every access throw, like a browser that blocks
// storage.
export var makeStorage = (broken = false) => {
  var data = new Map()
  var guard = () => {
    if (broken) throw new Error('SecurityError: storage is disabled')
  }
  return new Proxy(
    {},
    {
      get: (_, k) => (guard(), data.has(k) ? data.get(k) : undefined),
      set: (_, k, v) => (guard(), data.set(k, String(v)), true),
      ownKeys: () => (guard(), [...data.keys()]),
      getOwnPropertyDescriptor: (_, k) =>
        data.has(k) ? { value: data.get(k), enumerable: true, configurable: true } : undefined,
    }
  )
}

// A page at `href` whose embed tag has the data- attributes in `data` (camelCase keys, like
// script.dataset). Options: storage (shared between pages of one visitor), cookies (a Map,
// likewise), nav (navigator fields), now; respond(request) gives the collector's answer to a
// fetch (a status, default 202, or 'error' for a network error), beacon: false makes
// sendBeacon refuse (as over its quota).
export var page = (href, data = {}, options = {}) => {
  var requests = []
  var listeners = []
  var timers = []
  var clock = { now: options.now ?? 1_800_000_000_000 }
  var cookies = options.cookies || new Map()
  var storage = options.storage || makeStorage()
  var loc = new URL(href)
  var location = {
    get href() {
      return loc.href
    },
    get host() {
      return loc.host
    },
    get hostname() {
      return loc.hostname
    },
    get protocol() {
      return loc.protocol
    },
  }
  var document = {
    title: options.title || 'Home',
    referrer: options.referrer || '',
    hidden: false,
    currentScript: { src: options.src || 'https://stats.example.com/t.js', dataset: data },
    addEventListener: (type, fn, capture) => listeners.push({ target: 'document', type, fn, capture }),
    get cookie() {
      return [...cookies].map(([k, v]) => k + '=' + v).join('; ')
    },
    set cookie(text) {
      var [pair] = text.split(';')
      var i = pair.indexOf('=')
      cookies.set(pair.slice(0, i), pair.slice(i + 1))
      document.cookieWrites.push(text)
    },
    cookieWrites: [],
  }
  var window = {
    addEventListener: (type, fn, capture) => listeners.push({ target: 'window', type, fn, capture }),
    funnel: options.stub,
  }
  var navigator = {
    language: 'de-DE',
    onLine: true,
    webdriver: false,
    doNotTrack: null,
    ...options.nav,
  }
  var record = (via, url, init) => {
    var body = typeof init == 'string' ? init : init.body
    var request = { via, url: String(url), init, text: body, body: JSON.parse(body) }
    requests.push(request)
    return request
  }
  navigator.sendBeacon ||= (url, body) => options.beacon !== false && !!record('beacon', url, body)
  var fetch = (url, init) => {
    var request = record('fetch', url, init)
    var status = options.respond?.(request) ?? 202
    return status == 'error' ? Promise.reject(new TypeError('Failed to fetch')) : Promise.resolve({ status })
  }

  var globals = {
    window,
    document,
    navigator,
    location,
    screen: { width: 1440 },
    localStorage: storage,
    CSS: { escape: cssEscape },
    URL,
    Blob,
    JSON,
    Date: { now: () => clock.now },
    setTimeout: (fn, ms) => (timers.push({ fn, at: clock.now + ms, every: 0 }), timers.length),
    setInterval: (fn, ms) => (timers.push({ fn, at: clock.now + ms, every: ms }), timers.length),
    clearTimeout: () => {},
    fetch,
    ...options.globals,
  }
  var code = readFileSync(options.dist || DIST, 'utf8')
  var names = Object.keys(globals)
  // The snippet's free identifiers resolve to these parameters instead of Node's globals.
  var run = new Function(...names, code)

  var api = {
    window,
    document,
    navigator,
    storage,
    cookies,
    requests,
    clock,
    // Every event sent so far, in order.
    get events() {
      return requests.flatMap((r) => r.body.events)
    },
    start() {
      run(...names.map((k) => globals[k]))
      return api
    },
    // Moves the clock, running due timers in order.
    tick(ms) {
      var end = clock.now + ms
      for (;;) {
        var due = timers.filter((t) => t.at <= end).sort((a, b) => a.at - b.at)[0]
        if (!due) break
        clock.now = Math.max(clock.now, due.at)
        due.every ? (due.at += due.every) : timers.splice(timers.indexOf(due), 1)
        due.fn()
      }
      clock.now = end
      return api
    },
    navigate(to) {
      loc = new URL(to, loc)
      return api
    },
    fire(target, type, event = {}) {
      for (var l of listeners) if (l.target == target && l.type == type) l.fn({ type, ...event })
      return api
    },
    // A click as the document's listener sees it: the composed path runs from the element up
    // through shadow roots ({host}) to the document and window; the target is retargeted to
    // the outermost shadow host. auxclick(element, button) is a middle (1) or right (2) click.
    click(element, type = 'click', button = 0) {
      var path = []
      var target = element
      for (var n = element; n; n = n.localName ? n.parentElement : n.host) {
        path.push(n)
        if (!n.localName) target = n.host
      }
      path.push(document, window)
      return api.fire('document', type, { target, button, composedPath: () => path })
    },
    auxclick(element, button = 1) {
      return api.click(element, 'auxclick', button)
    },
    hide() {
      document.hidden = true
      return api.fire('window', 'visibilitychange')
    },
    funnel(...args) {
      window.funnel(...args)
      return api
    },
    // Lets the answers to the requests made so far reach the snippet.
    settle: () => new Promise((resolve) => setImmediate(() => resolve(api))),
  }
  return api
}

// The queue stub from the README, bound to a page's window before the snippet loads.
export var stub = () => {
  var f = function () {
    ;(f.q = f.q || []).push(arguments)
  }
  return f
}
