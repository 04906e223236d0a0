// The built snippet (js/dist/t.js) on a scripted page: URL and attribute parsing, queueing and
// replay, batching and transport, single-page apps, clicks, identity, privacy and opt-out.
// What the collector does with what t.js sends (POST /api/collect?tidy: props and values
// cleaned, text cut, half surrogate pairs replaced, selector, outbound and language derived)
// is tested in tests/collector/test_tidy.py, end to end in tests/browser/test_snippet.py.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { el, makeStorage, page, stub } from './env.js'

var LANDING =
  'https://shop.example.com/spring?utm_source=newsletter&utm_medium=email&utm_campaign=spring' +
  '&mtm_kwd=shoes&pk_campaign=x&gclid=G1&fbclid=F1&msclkid=M1#top'
var SITE = { site: 'shop1', allowLocal: '' }
var UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

test('the landing pageview keeps the whole query, referrer, title and screen', () => {
  var p = page(LANDING, { site: 'shop1' }, { referrer: 'https://www.google.com/', title: 'Spring' }).start()
  p.tick(1000)
  assert.equal(p.requests.length, 1)
  var [r] = p.requests
  assert.equal(r.url, 'https://stats.example.com/api/collect?tidy')
  assert.equal(r.body.site, 'shop1')
  var [e] = p.events
  assert.match(e.id, UUID)
  assert.match(e.visitor, UUID)
  assert.match(e.session, UUID)
  assert.deepEqual(
    { ...e, id: 0, visitor: 0, session: 0 },
    {
      id: 0,
      visitor: 0,
      session: 0,
      type: 'pageview',
      ts: 1_800_000_000_000,
      url: LANDING.split('#')[0],
      referrer: 'https://www.google.com/',
      title: 'Spring',
      screen_width: 1440,
    }
  )
  // The language is the collector's: the first of the request's Accept-Language.
  assert.equal('language' in e, false)
})

test('url, referrer and title go as the page has them: the collector cuts them', () => {
  var long = 'https://shop.example.com/p?x=' + 'a'.repeat(20000)
  var title = 't'.repeat(999) + '\ud83d half'
  var p = page(long, { site: 's' }, { referrer: 'https://r.example/' + 'r'.repeat(5000), title })
  var [r] = p.start().tick(1000).requests
  var [e] = r.body.events
  assert.deepEqual([e.url, e.referrer.length, e.title], [long, 5018, title])
  assert.match(r.text, /\\ud83d half/) // escaped, for the collector to replace
})

test('data-api: an origin, a full collector URL, or by default the script origin', () => {
  var url = (data, src) => page(LANDING, { site: 's', ...data }, { src }).start().tick(1000).requests[0].url
  assert.equal(url({}, 'https://cdn.example.net/t.js?v=3'), 'https://cdn.example.net/api/collect?tidy')
  assert.equal(url({ api: 'https://stats.example.org' }), 'https://stats.example.org/api/collect?tidy')
  assert.equal(url({ api: 'https://stats.example.org/' }), 'https://stats.example.org/api/collect?tidy')
  assert.equal(url({ api: 'https://stats.example.org/api/collect' }), 'https://stats.example.org/api/collect?tidy')
})

test('the fragment is not part of the page URL unless data-hash is set', () => {
  var plain = page(LANDING, { site: 's' }).start()
  plain.navigate('#pricing').tick(1000)
  assert.deepEqual(plain.events.map((e) => e.type), ['pageview'])

  var hashed = page('https://shop.example.com/app#/home', { site: 's', hash: '' }).start()
  hashed.navigate('#/pricing').tick(1000)
  assert.deepEqual(
    hashed.events.map((e) => [e.type, e.url, e.referrer]),
    [
      ['pageview', 'https://shop.example.com/app#/home', ''],
      ['pageview', 'https://shop.example.com/app#/pricing', 'https://shop.example.com/app#/home'],
    ]
  )
})

test('calls queued by the stub are replayed in order after the first pageview', () => {
  var f = stub()
  f('identify', 'u-1')
  f('event', 'signup', { plan: 'pro' }, { value: 49 })
  f('nonsense', 1, 2)
  f('event', 'second')
  var p = page(LANDING, { site: 's' }, { stub: f }).start().tick(1000)
  assert.deepEqual(
    p.events.map((e) => [e.type, e.name, e.user, e.props, e.value]),
    [
      ['pageview', undefined, undefined, undefined, undefined],
      ['event', 'identify', 'u-1', undefined, undefined],
      ['event', 'signup', 'u-1', { plan: 'pro' }, 49],
      ['event', 'second', 'u-1', undefined, undefined],
    ]
  )
  assert.equal(typeof p.window.funnel, 'function')
})

test('props and value go as given (the collector keeps what it can store); a call whose props cannot be written costs that event only', () => {
  var p = page(LANDING, { site: 's' }).start()
  var props = { items: ['a'], coupon: null, sku: 'A1', qty: 2, nan: NaN, at: { x: 1 } }
  var circular = { sku: 'B2' }
  circular.self = circular
  p.funnel('event', 'purchase', props, { value: '49.90' })
  p.funnel('event', 'broken', circular).funnel('event', 'big', { n: 10n })
  p.funnel('event', 'after', 'not props', { value: true })
  p.tick(1000).hide()
  assert.deepEqual(
    p.events.slice(1).map((e) => [e.name, e.props, e.value]),
    [
      ['purchase', { items: ['a'], coupon: null, sku: 'A1', qty: 2, nan: null, at: { x: 1 } }, '49.90'],
      ['after', 'not props', true],
    ]
  )
})

test('t.js included twice: only the first copy tracks; calls queued for the second arrive', () => {
  var p = page(LANDING, { site: 's' }, { stub: stub() }).start()
  var api = p.window.funnel
  p.window.funnel = stub() // the stub defined again, as a second embed does
  p.window.funnel('event', 'between')
  p.start()
  assert.equal(p.window.funnel, api)
  p.click(el('a', { href: '/x' }, 'x')).funnel('event', 'after').tick(1000)
  assert.deepEqual(p.events.map((e) => e.name || e.type), ['pageview', 'between', 'click', 'after'])
})

test('batches: 10 events leave at once, fewer after 1 s, the rest when the page hides', () => {
  var p = page(LANDING, { site: 's' }).start()
  for (var i = 0; i < 9; i++) p.funnel('event', 'e' + i)
  assert.equal(p.requests.length, 1) // pageview + 9 events
  assert.equal(p.requests[0].body.events.length, 10)
  p.funnel('event', 'late')
  assert.equal(p.requests.length, 1)
  p.tick(999)
  assert.equal(p.requests.length, 1)
  p.tick(1)
  assert.equal(p.requests.length, 2)
  p.funnel('event', 'before-hide').hide()
  assert.equal(p.requests.length, 3)
  p.funnel('event', 'before-unload').fire('window', 'pagehide')
  assert.deepEqual(p.requests.map((r) => r.body.events.length), [10, 1, 1, 1])
  var ids = p.events.map((e) => e.id)
  assert.equal(new Set(ids).size, ids.length)
})

test('transport: sendBeacon with a text/plain JSON body; fetch with keepalive when it refuses', () => {
  var p = page(LANDING, { site: 's' }).start().tick(1000)
  var [sent] = p.requests
  assert.equal(sent.via, 'beacon')
  assert.equal(typeof sent.init, 'string') // a string body: text/plain, no preflight
  assert.ok(sent.url.endsWith('/api/collect?tidy'))
  p.funnel('event', 'last').fire('window', 'pagehide')
  assert.deepEqual(p.requests[1].body.events.map((e) => e.name), ['last'])
  // A beacon refused (its 64 KB quota spent) goes by fetch with keepalive instead.
  var q = page(LANDING, { site: 's' }, { beacon: false }).start().tick(1000)
  var [fetched] = q.requests
  assert.equal(fetched.via, 'fetch')
  assert.equal(fetched.init.method, 'POST')
  assert.equal(fetched.init.keepalive, 1)
  assert.equal(typeof fetched.init.body, 'string')
})

test('a failing collector: each event is sent once, nothing is kept or thrown', async () => {
  var storage = makeStorage()
  var p = page(LANDING, { site: 's' }, { storage, beacon: false, respond: () => 'error' }).start()
  p.funnel('event', 'a').tick(1000)
  await p.settle() // the rejected fetch is handled
  p.funnel('event', 'b').tick(1000)
  await p.settle()
  var ids = p.requests.flatMap((r) => r.body.events.map((e) => e.id))
  assert.equal(new Set(ids).size, ids.length)
  assert.deepEqual(p.events.map((e) => e.name), [undefined, 'a', 'b'])
  assert.equal(storage.funnel_queue, '[]')
})

test('single-page apps: one pageview per new URL, referrer is the previous route', () => {
  var p = page('https://shop.example.com/', { site: 's' }).start()
  p.navigate('/pricing?tab=monthly')
  p.document.title = 'Pricing'
  p.tick(300)
  p.navigate('/pricing?tab=monthly').tick(300) // replaceState with the same URL
  p.navigate('/pricing?tab=monthly#faq').tick(300) // only the fragment changed
  p.navigate('/checkout').funnel('event', 'begin_checkout') // an event right after a route change
  p.tick(1000)
  assert.deepEqual(
    p.events.map((e) => [e.type, e.url, e.referrer, e.title]),
    [
      ['pageview', 'https://shop.example.com/', '', 'Home'],
      ['pageview', 'https://shop.example.com/pricing?tab=monthly', 'https://shop.example.com/', 'Pricing'],
      ['pageview', 'https://shop.example.com/checkout', 'https://shop.example.com/pricing?tab=monthly', 'Pricing'],
      ['event', 'https://shop.example.com/checkout', 'https://shop.example.com/pricing?tab=monthly', 'Pricing'],
    ]
  )
})

test('data-spa="false" counts no route changes; funnel("pageview") counts one by hand', () => {
  var p = page('https://shop.example.com/', { site: 's', spa: 'false' }).start()
  p.navigate('/pricing').funnel('event', 'x').tick(2000).hide()
  assert.deepEqual(p.events.map((e) => e.type), ['pageview', 'event'])
  p.funnel('pageview').funnel('pageview').tick(1000)
  assert.deepEqual(
    p.events.map((e) => [e.type, e.url]),
    [
      ['pageview', 'https://shop.example.com/'],
      ['event', 'https://shop.example.com/pricing'],
      ['pageview', 'https://shop.example.com/pricing'],
      ['pageview', 'https://shop.example.com/pricing'],
    ]
  )
})

test('clicks: links, buttons, role=button, submit inputs; tagged elements send their event', () => {
  var body = el('body')
  var nav = el('nav', {}, '', body)
  var link = el('a', { href: 'https://partner.example.org/x', class: 'out' }, '  Partner\n\n   deal ', nav)
  var icon = el('span', {}, '', el('button', { id: 'buy', 'data-funnel-prop-sku': 'A1' }, 'Buy', body))
  var tagged = el('div', { 'data-funnel-event': 'video_play', 'data-funnel-prop-video': 'intro', 'data-x': '1' }, 'Play', body)
  var inner = el('b', {}, 'Play', tagged)
  var p = page('https://shop.example.com/', { site: 's' }).start()
  p.click(link).click(icon).click(inner).click(el('p', {}, 'text', body))
  p.click(el('div', { role: 'button', class: 'menu  wide x' }, 'Menu', body)).click(el('input', { type: 'submit', value: ' Send ' }, '', body))
  p.click(el('a', {}, 'x'.repeat(300), body))
  p.tick(1000)
  var clicks = p.events.slice(1)
  assert.deepEqual(
    clicks.map((e) => [e.type, e.name, e.props, e.element.tag, e.element.text, e.element.id, e.element.class]),
    [
      ['click', null, {}, 'a', '  Partner\n\n   deal ', null, 'out'],
      ['click', null, { sku: 'A1' }, 'button', 'Buy', 'buy', null],
      ['event', 'video_play', { video: 'intro' }, 'div', 'Play', null, null],
      ['click', null, {}, 'div', 'Menu', null, 'menu  wide x'],
      ['click', null, {}, 'input', ' Send ', null, null],
      ['click', null, {}, 'a', 'x'.repeat(200), null, null],
    ]
  )
  // An absolute href for links only; the collector derives outbound and the selector.
  assert.deepEqual(clicks.map((e) => e.element.href), ['https://partner.example.org/x', undefined, undefined, undefined, undefined, ''])
  assert.ok(clicks.every((e) => !('outbound' in e) && !('selector' in e.element)))
})

test('the text goes as the page has it, cut at 200 UTF-16 units: the collector collapses and cuts it', () => {
  var p = page('https://shop.example.com/', { site: 's' }).start()
  p.click(el('a', {}, ' a\n' + 'a'.repeat(196) + '😀 more')).tick(1000)
  assert.equal(p.events[1].element.text, ' a\n' + 'a'.repeat(196) + '\ud83d')
  assert.match(p.requests[0].text, /a{196}\\ud83d"/) // half a pair, escaped: the collector makes it U+FFFD
})

test('what was typed is never the text: only submit, button and reset inputs give their value', () => {
  var body = el('body')
  var p = page('https://shop.example.com/', { site: 's' }).start()
  var text = (tag, attrs, content) => {
    p.click(el(tag, { 'data-funnel-event': 'x', ...attrs }, content, body)).tick(1000)
    return p.events.at(-1).element.text
  }
  assert.equal(text('input', { type: 'password', value: 'hunter2' }), '')
  assert.equal(text('input', { type: 'email', value: 'ann@example.test' }), '')
  assert.equal(text('input', { value: 'typed' }), '')
  assert.equal(text('input', { type: 'checkbox', value: 'on' }), '')
  assert.equal(text('textarea', { value: 'typed' }, 'default'), '')
  assert.equal(text('select', { value: 'pro' }, 'basic pro'), '')
  assert.equal(text('input', { type: 'button', value: ' Next ' }), ' Next ') // trimmed by the collector
  assert.equal(text('input', { type: 'RESET', value: 'Clear' }), 'Clear')
  // A button's value attribute is data for the server, not what the visitor saw.
  assert.equal(text('button', { value: 'delete_account' }, ' Delete '), ' Delete ')
  assert.doesNotMatch(p.requests.map((r) => r.text).join(), /hunter2|ann@|typed|default|basic/)
})

test('a tagged form with controls named id, class, href or host is described by its attributes', () => {
  var control = el('input', { name: 'id' })
  var shadowed = { id: control, className: control, host: control, href: control, dataset: control }
  var form = el('form', { id: 'newsletter', class: 'wide card', 'data-funnel-event': 'newsletter' }, ' Join ', el('body'), shadowed)
  var p = page('https://shop.example.com/', { site: 's' }).start()
  p.click(el('button', { type: 'submit' }, 'Join', form)).tick(1000)
  assert.deepEqual(
    p.events.slice(1).map((e) => [e.type, e.name, e.element]),
    [['event', 'newsletter', { tag: 'form', text: ' Join ', id: 'newsletter', class: 'wide card' }]]
  )
})

test('data-auto-clicks="false" keeps tagged elements only', () => {
  var p = page('https://shop.example.com/', { site: 's', autoClicks: 'false' }).start()
  p.click(el('a', { href: '/x' }, 'x')).click(el('button', { 'data-funnel-event': 'cta' }, 'Go')).tick(1000)
  assert.deepEqual(p.events.map((e) => e.name || e.type), ['pageview', 'cta'])
})

test('identify: later events and later pages carry the user; the same id is sent once', () => {
  var storage = makeStorage()
  var p = page(LANDING, { site: 's' }, { storage }).start()
  p.funnel('identify', 'user-42').funnel('identify', 'user-42').funnel('event', 'x').tick(1000)
  assert.deepEqual(p.events.map((e) => [e.name, e.user]), [[undefined, undefined], ['identify', 'user-42'], ['x', 'user-42']])
  var next = page('https://shop.example.com/next', { site: 's' }, { storage }).start().tick(1000)
  assert.equal(next.events[0].user, 'user-42')
  assert.equal(next.events[0].visitor, p.events[0].visitor)
})

test('identify takes a non-empty string (trimmed) or a number; the collector checks the length', () => {
  var storage = makeStorage()
  var p = page(LANDING, { site: 's' }, { storage }).start()
  for (var bad of [{ id: 5 }, ['u'], '', '   ', true, null, undefined]) p.funnel('identify', bad)
  p.funnel('event', 'anonymous')
  p.funnel('identify', ' u-7 ').funnel('identify', 'u-7').funnel('identify', 42)
  p.tick(1000)
  assert.deepEqual(
    p.events.map((e) => [e.name, e.user]),
    [
      [undefined, undefined],
      ['anonymous', undefined],
      ['identify', 'u-7'],
      ['identify', '42'],
    ]
  )
  assert.equal(storage.funnel_user, '42')
})

test('a stored user id goes as stored: the collector leaves out one it cannot take', () => {
  var storage = makeStorage()
  storage.funnel_user = 'x'.repeat(130)
  var p = page(LANDING, { site: 's' }, { storage }).start().tick(1000)
  assert.equal(p.events[0].user, 'x'.repeat(130))
})

test('visitor lasts a year since last seen, session 30 minutes of inactivity', () => {
  var storage = makeStorage()
  var at = (now) => page('https://shop.example.com/', { site: 's' }, { storage, now }).start().tick(1000).events[0]
  var t0 = 1_800_000_000_000
  var first = at(t0)
  var soon = at(t0 + 29 * 60e3)
  var later = at(t0 + 29 * 60e3 + 31 * 60e3)
  var nextYear = at(t0 + 29 * 60e3 + 31 * 60e3 + 366 * 864e5)
  assert.equal(soon.session, first.session)
  assert.notEqual(later.session, first.session)
  assert.equal(later.visitor, first.visitor)
  assert.notEqual(nextYear.visitor, first.visitor)
})

test('blocked localStorage falls back to first-party cookies for a year', () => {
  var cookies = new Map()
  var storage = makeStorage(true)
  var p = page(LANDING, { site: 's' }, { storage, cookies }).start().tick(1000)
  assert.match(p.document.cookieWrites.find((c) => c.startsWith('funnel_visitor=')), /;max-age=31536000;path=\//)
  var q = page(LANDING, { site: 's' }, { storage, cookies }).start().tick(1000)
  assert.equal(q.events[0].visitor, p.events[0].visitor)
})

test('cookie fallback: the offline queue stays in memory, never in a cookie', () => {
  var cookies = new Map()
  var p = page(LANDING, { site: 's' }, { storage: makeStorage(true), cookies, nav: { onLine: false } }).start()
  for (var i = 0; i < 30; i++) p.funnel('event', 'e' + i + ';x')
  p.hide()
  assert.deepEqual([...cookies.keys()].sort(), ['funnel_session', 'funnel_visitor'])
  p.navigator.onLine = true
  p.funnel('event', 'online').tick(1000)
  assert.equal(p.events.length, 32)
})

test('a corrupt stored value never stops tracking', () => {
  // Entries that are not events go along; the collector drops them (invalid_event).
  for (var queue of ['[{"id":"a";x', '"text"', '{}', 'null', '[null,5,{"id":"5a4f0d7e-4d8b-4c6e-9f1a-2b3c4d5e6f70","type":"event","name":"kept"}]']) {
    var storage = makeStorage()
    storage.funnel_queue = queue
    var p = page(LANDING, { site: 's' }, { storage }).start().tick(1000)
    var sent = p.events.map((e) => e?.name || e?.type || e)
    assert.deepEqual(sent, queue.includes('kept') ? [null, 5, 'kept', 'pageview'] : ['pageview'], queue)
  }
  var cookies = new Map([['funnel_queue', '[{"id":']])
  var p = page(LANDING, { site: 's' }, { storage: makeStorage(true), cookies }).start().tick(1000)
  assert.equal(p.events.length, 1) // the queue is never read from a cookie
})

test('data-cookieless stores nothing and sends no visitor, session or user', () => {
  var storage = makeStorage()
  var cookies = new Map()
  var p = page(LANDING, { site: 's', cookieless: '' }, { storage, cookies }).start()
  p.funnel('identify', 'u-9').funnel('event', 'x').tick(1000)
  p.navigator.onLine = false
  p.funnel('event', 'offline').hide()
  assert.deepEqual(Object.keys(storage), [])
  assert.equal(cookies.size, 0)
  for (var e of p.events) assert.equal(e.visitor ?? e.session, undefined)
  assert.equal(p.events[1].user, 'u-9') // this page only
})

test('offline: events are kept (newest 100) and sent by the next page with their ids', () => {
  var storage = makeStorage()
  var p = page(LANDING, { site: 's' }, { storage, nav: { onLine: false } }).start()
  for (var i = 0; i < 120; i++) p.funnel('event', 'e' + i).clock.now++
  p.fire('window', 'pagehide')
  assert.equal(p.requests.length, 0)
  var kept = JSON.parse(storage.funnel_queue)
  assert.equal(kept.length, 100)
  assert.equal(kept.at(-1).name, 'e119')
  var next = page('https://shop.example.com/next', { site: 's' }, { storage }).start().tick(1000)
  var sent = next.events.filter((e) => e.name)
  assert.deepEqual(sent.map((e) => e.id), kept.map((e) => e.id))
  assert.equal(storage.funnel_queue, '[]')
})

test('a backlog of 10 or more events does not make the next page count two pageviews', () => {
  var storage = makeStorage()
  var p = page(LANDING, { site: 's' }, { storage, nav: { onLine: false } }).start()
  for (var i = 0; i < 15; i++) p.funnel('event', 'e' + i)
  p.fire('window', 'pagehide')
  var next = page('https://shop.example.com/next', { site: 's' }, { storage }).start().tick(1000)
  assert.deepEqual(
    next.events.filter((e) => e.type == 'pageview').map((e) => e.url),
    [LANDING.split('#')[0], 'https://shop.example.com/next'] // the first page's, kept offline
  )
  assert.equal(next.events.length, 17)
})

test('back online on the same page: the newest 100 leave, 10 events a request', () => {
  var storage = makeStorage()
  var p = page(LANDING, { site: 's' }, { storage, nav: { onLine: false } }).start()
  for (var i = 0; i < 120; i++) p.funnel('event', 'e' + i).clock.now++
  p.tick(1000)
  assert.equal(p.requests.length, 0)
  p.navigator.onLine = true
  p.funnel('event', 'online').tick(1000)
  assert.ok(p.requests.every((r) => r.body.events.length <= 10))
  assert.deepEqual(
    p.events.map((e) => e.name || e.type),
    [...Array.from({ length: 100 }, (_, i) => 'e' + (i + 20)), 'online']
  )
  assert.equal(storage.funnel_queue, '[]')
})

test('Do Not Track and Global Privacy Control send nothing unless data-respect-dnt="false"', () => {
  for (var nav of [{ doNotTrack: '1' }, { globalPrivacyControl: true }]) {
    var p = page(LANDING, { site: 's' }, { nav }).start()
    p.funnel('event', 'x').click(el('a', { href: '/' })).tick(2000).hide()
    assert.equal(p.requests.length, 0)
    var allowed = page(LANDING, { site: 's', respectDnt: 'false' }, { nav }).start().tick(1000)
    assert.equal(allowed.requests.length, 1)
  }
})

test('localhost and automated browsers send nothing unless data-allow-local', () => {
  var cases = [
    ['http://localhost:3000/', {}],
    ['http://app.localhost/', {}],
    ['http://127.0.0.1:8000/', {}],
    ['http://[::1]/', {}],
    ['https://shop.example.com/', { webdriver: true }],
  ]
  for (var [href, nav] of cases) {
    assert.equal(page(href, { site: 's' }, { nav }).start().tick(1000).requests.length, 0, href)
    assert.equal(page(href, { site: 's', allowLocal: '' }, { nav }).start().tick(1000).requests.length, 1, href)
  }
})

test('hosts that only start like a local one are tracked; file: pages never are', () => {
  for (var href of ['https://localhosting.test/', 'https://localhost.example.com/', 'https://127x.example/'])
    assert.equal(page(href, { site: 's' }).start().tick(1000).requests.length, 1, href)
  // No host, and the collector refuses non-http(s) URLs: not even with data-allow-local.
  assert.equal(page('file:///home/me/page.html', { site: 's', allowLocal: '' }).start().tick(1000).requests.length, 0)
})

test('data-domains: only those hosts and their subdomains', () => {
  var sent = (href) => page(href, { site: 's', domains: 'example.com, shop.example.org' }).start().tick(1000).requests.length
  assert.equal(sent('https://example.com/'), 1)
  assert.equal(sent('https://www.example.com/'), 1)
  assert.equal(sent('https://shop.example.org/'), 1)
  assert.equal(sent('https://example.org/'), 0)
  assert.equal(sent('https://notexample.com/'), 0)
})

test('opt-out drops queued events and persists; opt-in resumes', () => {
  var storage = makeStorage()
  var p = page(LANDING, { site: 's' }, { storage }).start()
  p.funnel('event', 'queued').funnel('optout').funnel('event', 'after').click(el('a', { href: '/' })).tick(2000).hide()
  assert.equal(p.requests.length, 0)
  var next = page(LANDING, { site: 's' }, { storage }).start().tick(2000)
  assert.equal(next.requests.length, 0)
  next.funnel('optin').funnel('event', 'back').tick(1000)
  assert.deepEqual(next.events.map((e) => e.name), ['back'])
})

test('nothing throws into the page: bad calls, broken storage, failing transports', async () => {
  var tries = []
  var p = page(LANDING, SITE, {
    storage: makeStorage(true),
    nav: {
      sendBeacon: () => {
        tries.push('beacon')
        throw new TypeError('Illegal invocation')
      },
    },
    globals: { fetch: () => (tries.push('fetch'), Promise.reject(new TypeError('Failed to fetch'))) },
  }).start()
  p.funnel().funnel('event').funnel('event', 'x', 'not props').funnel('identify').funnel(null)
  p.click(null).fire('document', 'click', {}).tick(5000).hide()
  await p.settle()
  p.funnel('event', 'y').fire('window', 'pagehide')
  assert.deepEqual(tries, ['beacon', 'beacon']) // a throwing beacon ends that send, quietly
  var q = page(LANDING, SITE, { beacon: false, globals: { fetch: () => (tries.push('fetch'), Promise.reject(new TypeError('Failed to fetch'))) } }).start()
  q.tick(1000)
  await q.settle() // the rejection is handled
  assert.equal(tries.at(-1), 'fetch')
})

test('a page without the embed attributes sends nothing and does not throw', () => {
  var p = page(LANDING, {}, {}).start().funnel('event', 'x').tick(1000).hide()
  assert.equal(p.requests.length, 0) // the collector would refuse a batch without a site key
})

test("the page's toJSON patches do not change the body; half surrogate pairs go escaped", () => {
  var storage = makeStorage()
  var own = Array.prototype.toJSON
  // Prototype.js 1.6: arrays serialise to a string of their own making.
  Array.prototype.toJSON = function () {
    return '[' + this.join(', ') + ']'
  }
  try {
    var p = page(LANDING, { site: 's' }, { storage, title: 'Half \ud83d pair' }).start().tick(1000)
    p.navigator.onLine = false
    p.funnel('event', 'offline').hide()
    var next = page(LANDING, { site: 's' }, { storage }).start().tick(1000)
  } finally {
    Array.prototype.toJSON = own
  }
  // The collector replaces the lone half with U+FFFD (tests/collector/test_tidy.py).
  assert.deepEqual(p.requests[0].body.events.map((e) => [e.type, e.title]), [['pageview', 'Half \ud83d pair']])
  assert.deepEqual(JSON.parse(storage.funnel_queue), [])
  assert.deepEqual(next.requests[0].body.events.map((e) => e.name || e.type), ['offline', 'pageview'])
})
