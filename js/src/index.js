// The snippet: reads the embed tag, captures pageviews (single-page apps too), clicks and API
// calls, batches them to the collector and replays calls queued by the stub. Everything runs
// inside `safe`, so nothing ever throws into the host page.
import { describe } from './element.js'
import { clean, cut, number, userId } from './fields.js'
import { uuid } from './ids.js'
import { kv } from './storage.js'

var w = window
var d = document
var n = navigator
var loc = location
var safe =
  (f) =>
  (...a) => {
    try {
      return f(...a)
    } catch (e) {}
  }

// JSON that the page's own toJSON methods cannot change (Prototype.js gives arrays one that
// returns a string, so {events: [...]} became {events: "..."}): arrays are joined here. Every
// string is made well-formed, since the collector refuses a lone surrogate (in a title, say).
var json = (v) => JSON.stringify(v, (k, x) => x?.toWellFormed?.() ?? x)
var list = (a) => '[' + a.map(json).join() + ']'

safe(() => {
  // t.js included twice: the first copy tracks; a later one only hands it the calls queued
  // since (a stub defined again) and stops, so nothing is counted twice.
  var first = w.__funnel
  if (first) {
    var later = w.funnel?.q
    w.funnel = first
    return later?.map((a) => first(...a))
  }
  var script = d.currentScript
  var data = script.dataset
  var on = (k) => data[k] != 'false'
  var spa = on('spa')
  var cookieless = data.cookieless != null
  var hash = data.hash != null
  var host = loc.hostname
  var domains = data.domains
  var off =
    !data.site ||
    // Do Not Track and Global Privacy Control, unless data-respect-dnt="false".
    (on('respectDnt') && (n.doNotTrack == 1 || n.globalPrivacyControl)) ||
    // file: pages: no host, and the collector only stores http(s) pages.
    !host ||
    // Local development (localhost and *.localhost, 127.x, IPv6 literals such as [::1]) and
    // automated browsers, unless data-allow-local.
    (data.allowLocal == null && (n.webdriver || /^(127\.|\[)|(^|\.)localhost$/.test(host))) ||
    // data-domains="shop.example.com, example.org": only those hosts and their subdomains.
    (domains && !domains.split(/[\s,]+/).some((h) => ('.' + host).endsWith('.' + h)))
  // data-api: the collector's origin ("https://stats.example.com"; a full URL ending in
  // /api/collect works too). By default, the origin the script was loaded from.
  var api = new URL('/api/collect', data.api || script.src)
  // A stored id an earlier version let through (an object, too long) is not used.
  var user = userId(kv('user'))
  var q = []
  var timer
  var hold = 0
  var cur
  var ref = d.referrer
  // The URL a pageview counts under: the whole URL with its query (utm_*, mtm_*, pk_*, click
  // ids), without the fragment unless the site routes by hash (data-hash).
  var page = () => loc.href.replace(hash ? '' : /#.*/, '')

  // The unsent events, the newest 100 in the order they happened (in memory too, so nothing
  // grows without limit), wait in localStorage for a later page: not with data-cookieless,
  // nor in cookies (where localStorage is blocked they stay in memory, for this page).
  var save = () => (q.sort((a, b) => a.ts - b.ts).splice(0, q.length - 100), cookieless || kv('queue', list(q), 1))
  // One request of at most 10 events (the collector takes 100, a keepalive body 64 KB) as a
  // text/plain JSON body, a CORS "simple" request without preflight: fetch with keepalive, so
  // it outlives the page, and whose answer is seen; as the page goes away (pagehide), no
  // answer can be, and sendBeacon sends it. A send that fails (network error, 5xx, 429, a
  // beacon refused) puts its events back, kept like offline ones: sent again with their ids
  // (a repeated id counts once) by the first flush a minute later, or by the next page.
  var send = (events, ev, body = '{"site":' + json(data.site) + ',"events":' + list(events) + '}') => {
    var fail = () => {
      hold = Date.now() + 6e4
      q.unshift(...events)
      save()
    }
    ev?.type == 'pagehide'
      ? n.sendBeacon(api, body) || fail()
      : // keepalive requests share a 64 KB quota: a bigger body goes as an ordinary request.
        fetch(api, { method: 'POST', body, keepalive: body.length < 2e4 }).then(
          (r) => (r.status < 500 && r.status != 429) || fail(),
          fail
        )
  }
  var flush = safe((ev) => {
    timer = 0
    view()
    if (q[0]) {
      while (n.onLine && hold < Date.now() && q[0]) send(q.splice(0, 10), ev)
      save()
    }
  })
  // Batches leave at 10 events, 1 s after the first queued one, and when the page hides.
  // (Each flush saves, which keeps the newest 100 of what could not leave.)
  var push = (e) => {
    q.push(e)
    q[9] ? flush() : (timer = timer || setTimeout(flush, 1e3))
  }
  var may = () => !off && kv('optout') != 1

  var track = (type, extra) => {
    // A route change not yet seen by the poll gets its pageview before this event (every
    // event but a pageview carries extra fields).
    extra && view()
    var now = Date.now()
    // Visitor: one year since last seen; session: 30 minutes without activity.
    // Stored as "id.lastUsedMs"; a new id once ttl ms passed without use.
    var id = (k, ttl, [v, used] = (kv(k) || '').split('.')) => (kv(k, (v = now - used < ttl ? v : uuid()) + '.' + now), v)
    may() &&
      push({
        id: uuid(),
        type,
        ts: now,
        // Cut to what the collector reads: it stores 2,048 characters of a URL, but takes the
        // campaign parameters and click id from up to 16,384; titles are kept to 1,000.
        url: cut(page(), 16384),
        referrer: cut(ref, 2048),
        title: cut(d.title, 1000),
        screen_width: screen.width,
        language: n.language,
        user,
        ...(cookieless || { visitor: id('visitor', 31536e6), session: id('session', 18e5) }),
        ...extra,
      })
  }

  // A URL counts once until another one was counted, so routers pushing or replacing the same
  // URL add nothing. The first view's referrer is the document's, each later route's the URL
  // it came from. view(1) is a manual funnel('pageview'): it counts even the same URL again,
  // and is the only way to count a new URL with data-spa="false".
  var view = (force) => {
    var u = page()
    if (force || (spa && u != cur)) {
      u != cur && ((ref = cur || ref), (cur = u))
      track('pageview')
    }
  }

  // A new visitor and session without a user: what follows is no one known so far.
  var forget = () => {
    user = void 0
    cookieless || ['user', 'visitor', 'session'].map((k) => kv(k, ''))
  }

  var commands = {
    event: (name, props, opts) => track('event', { name, props: clean(props), value: number(opts?.value) }),
    pageview: () => view(1),
    identify: (id) => {
      id = userId(id)
      if (id && id != user) {
        user = id
        cookieless || kv('user', user)
        track('event', { name: 'identify' })
      }
    },
    reset: forget,
    // Opting out also forgets who this was: the ids and the events waiting to be sent.
    optout: () => {
      kv('optout', 1)
      forget()
      q.length = 0
      save()
    },
    optin: () => kv('optout', 0),
  }
  var queued = w.funnel?.q

  // Events an earlier page could not send (offline, or refused by a failing collector) join
  // the queue as they are: pushing them one by one would send a batch of 10 before this page's
  // pageview was counted, and that send's URL check would count it a second time. A stored
  // value that is not such a list is dropped.
  try {
    cookieless || (may() && (q = JSON.parse(kv('queue', null, 1)).filter((e) => e?.id)))
  } catch (e) {}
  view(1)
  // Single-page apps: any change of URL (pushState, replaceState, popstate, and the fragment
  // with data-hash) is seen within 300 ms, before the next event and before each send; by
  // then the router has usually set the new page's title too. (A poll rather than patching
  // history: it also sees the Navigation API and costs fewer bytes.)
  setInterval(view, 300)

  // An element tagged data-funnel-event="name" sends that event; links, buttons and submit
  // inputs send a click unless data-auto-clicks="false". They are looked for along the
  // event's composed path, which reaches into open shadow roots (ev.target is the shadow
  // host there). A middle click, which opens a link in a new tab, fires auxclick instead of
  // click: it counts on links.
  var click = safe((ev, aux, path = ev.composedPath(), find = (s) => path.find((el) => el.matches?.(s))) => {
    var el = find('[data-funnel-event]') || (on('autoClicks') && find('a,button,[role=button],[type=submit]'))
    var name = el?.getAttribute('data-funnel-event') || void 0
    el && (!aux || (ev.button == 1 && find('a[href]'))) && track(name ? 'event' : 'click', { name, ...describe(el, loc.host) })
  })
  d.addEventListener('click', click, true)
  d.addEventListener('auxclick', (ev) => click(ev, 1), true)
  // visibilitychange bubbles from the document to the window.
  w.addEventListener('visibilitychange', flush)
  w.addEventListener('pagehide', flush)

  w.__funnel = w.funnel = safe((k, ...a) => commands[k](...a))
  queued?.map((a) => w.funnel(...a))
})()
