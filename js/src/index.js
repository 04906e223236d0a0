// The snippet: reads the embed tag, captures pageviews (single-page apps too), clicks and API
// calls, batches them to the collector and replays calls queued by the stub. Everything runs
// inside `safe`, so nothing ever throws into the host page.
//
// It sends what the page gives it: the collector takes t.js's requests as POST
// /api/collect?tidy and cleans there what would cost bytes to clean here (prop entries it
// cannot store, value strings such as '49.90', text of any length, half surrogate pairs, an
// unusable stored user id); it also derives the selector, the outbound flag and the language.
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
    } catch {}
  }
var json = JSON.stringify
// Hands the calls queued by a stub to the running copy's API (w.__funnel).
var replay = (q = w.funnel?.q) => ((w.funnel = w.__funnel), q?.map((a) => w.funnel(...a)))

safe(() => {
  // t.js included twice: the first copy tracks; a later one only hands it the calls queued
  // since (a stub defined again) and stops, so nothing is counted twice.
  if (w.__funnel) return replay()
  var script = d.currentScript
  var data = script.dataset
  var on = (k) => data[k] != 'false'
  var cookieless = 'cookieless' in data
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
    (!('allowLocal' in data) && (n.webdriver || /^(127\.|\[)|(^|\.)localhost$/.test(host))) ||
    // data-domains="shop.example.com, example.org": only those hosts and their subdomains.
    (domains && !domains.split(/[\s,]+/).some((h) => ('.' + host).endsWith('.' + h)))
  // data-api: the collector's origin ("https://stats.example.com"; a full URL ending in
  // /api/collect works too). By default, the origin the script was loaded from.
  var api = new URL('/api/collect?tidy', data.api || script.src)
  var user = kv('user')
  // The unsent events, each as its JSON text (written once, when it happens, so nothing the
  // page patches later, such as Array.prototype.toJSON, can change it; an event whose props
  // cannot be written at all is not recorded). "ts" comes first, so sorting the texts sorts
  // them by time (events of the same millisecond in no particular order).
  var q = []
  var cur
  var ref = d.referrer
  // The URL a pageview counts under: the whole URL with its query (utm_*, mtm_*, pk_*, click
  // ids), without the fragment unless the site routes by hash (data-hash).
  var page = () => loc.href.replace('hash' in data ? '' : /#.*/, '')
  // Events that could not leave (offline), the newest 100 in the order they happened (in
  // memory too, so nothing grows without limit), wait in localStorage for a later page: not
  // with data-cookieless, nor in cookies (where localStorage is blocked they stay in memory,
  // for this page).
  var save = () => ((q = q.slice(-100)), cookieless || kv('queue', '[' + q + ']', 1))
  // Requests of at most 10 events (the collector takes 100, a beacon's quota is 64 KB) as a
  // text/plain JSON body, a CORS "simple" request without preflight. sendBeacon outlives the
  // page and never reports a failing collector into the page's console; fetch with keepalive
  // carries what the beacon refuses (its quota spent). A send is not retried by the page:
  // each event carries its id, and offline events wait for the next page (see save).
  var flush = safe(() => {
    view()
    if (q[0]) {
      while (n.onLine && q[0])
        ((body, init = { method: 'POST', body, keepalive: 1, activateAfter: 0 }) => {
          try {
            fetchLater(api, init)
          } catch {
            n.sendBeacon(api, body) || fetch(api, init).catch(save)
          }
        })(
          '{"site":' + json(data.site) + ',"events":[' + q.splice(0, 10) + ']}'
        )
      save()
    }
  })
  var may = () => !off && kv('optout') != 1

  // Batches leave at 10 events, and within a second of each event.
  var track = (
    type,
    extra,
    now = Date.now(),
    // Visitor: one year since last seen; session: 30 minutes without activity.
    // Stored as "id.lastUsedMs"; a new id once ttl ms passed without use.
    id = (k, ttl, [v, used] = (kv(k) || '').split('.')) => (kv(k, (v = now - used < ttl ? v : uuid()) + '.' + now), v)
  ) => {
    // A route change not yet seen by the poll gets its pageview before this event (every
    // event but a pageview carries extra fields).
    extra && view()
    may() &&
      (q.push(
        json({
          ts: now,
          id: uuid(),
          type,
          url: page(),
          referrer: ref,
          title: d.title,
          screen_width: screen.width,
          user,
          ...(cookieless || { visitor: id('visitor', 31536e6), session: id('session', 18e5) }),
          ...extra,
        })
      ),
      q[9] ? flush() : setTimeout(flush, 1e3))
  }

  // A URL counts once until another one was counted, so routers pushing or replacing the same
  // URL add nothing. The first view's referrer is the document's, each later route's the URL
  // it came from. view(1) is a manual funnel('pageview'): it counts even the same URL again,
  // and is the only way to count a new URL with data-spa="false".
  var view = (force, u = page()) => {
    if (force || (on('spa') && u != cur)) {
      u != cur && ((ref = cur || ref), (cur = u))
      track('pageview')
    }
  }

  var commands = {
    event: (name, props, opts) => track('event', { name, props, value: opts?.value }),
    pageview: () => view(1),
    // A user id is a string (trimmed, not empty) or a finite number, of at most 128
    // characters; anything else is no id.
    identify: (id) => {
      if ((id = id?.trim ? id.trim() : id?.toFixed && '' + id) && id != user) {
        user = id
        cookieless || kv('user', user)
        track('event', { name: 'identify' })
      }
    },
    // Opting out also drops the events waiting to be sent.
    optout: () => {
      kv('optout', 1)
      q = []
      save()
    },
    optin: () => kv('optout', 0),
  }

  // Events an earlier page could not send (offline) join
  // the queue as they are: pushing them one by one would send a batch of 10 before this page's
  // pageview was counted, and that send's URL check would count it a second time. A stored
  // value that is not a list is dropped (and entries that are not events, by the collector).
  try {
    cookieless || (may() && (q = JSON.parse(kv('queue', null, 1)).map(json)))
  } catch {}
  view(1)
  // Single-page apps: any change of URL (pushState, replaceState, popstate, and the fragment
  // with data-hash) is seen within 300 ms, before the next event and before each send; by
  // then the router has usually set the new page's title too. (A poll rather than patching
  // history: it also sees the Navigation API and costs fewer bytes.)
  setInterval(view, 300)

  // An element tagged data-funnel-event="name" sends that event; links, buttons and submit
  // inputs send a click unless data-auto-clicks="false". They are looked for from the
  // target up (inside a shadow root the document's target is the host: not looked into, for
  // bytes; nor are middle clicks, which fire auxclick).
  var click = safe((ev, find = (s) => ev.target.closest(s)) => {
    var el = find('[data-funnel-event]') || (on('autoClicks') && find('a,button,[role=button],[type=submit]'))
    // Attributes are read with getAttribute, not as properties: a <form> exposes its controls
    // as properties, so form.id is the <input name=id> inside it.
    var a = (k) => el.getAttribute(k)
    var name = a('data-funnel-event')
    var tag = el.localName
    var props = {}
    // data-funnel-prop-KEY="value" becomes props.KEY.
    for (var { name: k, value } of el.attributes) k.startsWith('data-funnel-prop-') && (props[k.slice(17)] = value)
    track(name ? 'event' : 'click', {
        name,
        props,
        // The collector builds the CSS selector from tag, id and class, and flags a link to
        // another host as outbound.
        element: {
          tag,
          // The text is never what was typed: of the form controls only submit, button and
          // reset inputs have one, their label (the value); a button's text is its visible
          // text, not its value. Whitespace collapsed, trimmed, at most 100 characters (a cut
          // inside an emoji leaves half a surrogate pair: the collector makes it U+FFFD).
          text: ('labels' in el && tag != 'button' ? (/^(su|bu|re)/.test(el.type) ? el.value : '') : el.textContent)
            .slice(0, 200),
          // Links only (a, area): an SVG link's href is an object, a form's a control named href.
          href: el.href?.trim && el.href,
          id: a('id'),
          class: a('class'),
        },
      })
  })
  d.addEventListener('click', click, 1)
  // visibilitychange bubbles from the document to the window.
  w.addEventListener('visibilitychange', flush)
  w.addEventListener('pagehide', flush)

  w.__funnel = safe((k, ...a) => commands[k](...a))
  replay()
})()
