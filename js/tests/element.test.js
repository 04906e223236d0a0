// The selector builder and the click fields, on scripted elements.
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { describe, selector } from '../src/element.js'
import { cssEscape, el } from './env.js'

globalThis.CSS = { escape: cssEscape }

test('an id wins: #id', () => {
  assert.equal(selector(el('button', { id: 'buy', class: 'btn primary' })), '#buy')
})

test('otherwise the tag and the first two classes', () => {
  assert.equal(selector(el('a', { class: 'btn  cta   hero-link' })), 'a.btn.cta')
  assert.equal(selector(el('button')), 'button')
})

test('odd ids and classes are escaped, so the selector stays valid', () => {
  assert.equal(selector(el('div', { id: '1st item' })), '#\\31 st\\ item')
  assert.equal(selector(el('a', { class: 'md:px-4 w-1/2' })), 'a.md\\:px-4.w-1\\/2')
})

test('a link: tag, collapsed text capped at 100, absolute href, outbound by host', () => {
  var link = el('a', { href: 'https://partner.example.org/deal?x=1', id: 'p' }, '  Partner\n\n   deal ')
  assert.deepEqual(describe(link, 'shop.example.com'), {
    props: {},
    outbound: true,
    element: {
      tag: 'a',
      text: 'Partner deal',
      href: 'https://partner.example.org/deal?x=1',
      id: 'p',
      selector: '#p',
    },
  })
  assert.equal(describe(el('a', { href: '/pricing' }), 'shop.example.com').outbound, false)
  assert.equal(describe(el('a', { href: 'mailto:hi@example.com' }), 'shop.example.com').outbound, false)
  assert.equal(describe(el('a', {}, 'x'.repeat(300)), 'h').element.text.length, 100)
})

test('data-funnel-prop-* become props; buttons have no href and are never outbound', () => {
  var button = el('button', { 'data-funnel-prop-plan': 'pro', 'data-funnel-prop-plan-type': 'yearly', 'data-x': '1' }, 'Buy')
  var fields = describe(button, 'shop.example.com')
  assert.deepEqual(fields.props, { plan: 'pro', 'plan-type': 'yearly' })
  assert.equal(fields.outbound, false)
  assert.equal(fields.element.href, undefined)
  assert.equal(fields.element.text, 'Buy')
})

test('a submit input is described by its value', () => {
  assert.equal(describe(el('input', { type: 'submit', value: ' Send ' }), 'h').element.text, 'Send')
})

test('what was typed is never the text: only submit, button and reset inputs give their value', () => {
  var text = (tag, attrs, content) => describe(el(tag, attrs, content), 'h').element.text
  assert.equal(text('input', { type: 'password', value: 'hunter2' }), '')
  assert.equal(text('input', { type: 'email', value: 'ann@example.test' }), '')
  assert.equal(text('input', { value: 'typed' }), '')
  assert.equal(text('input', { type: 'checkbox', value: 'on' }), '')
  assert.equal(text('textarea', { value: 'typed' }, 'default'), '')
  assert.equal(text('select', { value: 'pro' }, 'basic pro'), '')
  assert.equal(text('input', { type: 'button', value: ' Next ' }), 'Next')
  assert.equal(text('input', { type: 'RESET', value: 'Clear' }), 'Clear')
  // A button's value attribute is data for the server, not what the visitor saw.
  assert.equal(text('button', { value: 'delete_account' }, ' Delete '), 'Delete')
})

test('a form whose controls are named id, class, host or href: its attributes count', () => {
  var input = el('input', { name: 'id' })
  var shadowed = { id: input, className: input, host: input, protocol: input, href: input, dataset: input }
  var form = el('form', { id: 'signup', class: 'wide card' }, ' Join ', null, shadowed)
  assert.deepEqual(describe(form, 'shop.example.com'), {
    props: {},
    outbound: false,
    element: { tag: 'form', text: 'Join', href: undefined, id: 'signup', selector: '#signup' },
  })
  var plain = el('form', { class: 'wide card' }, '', null, shadowed)
  assert.equal(describe(plain, 'h').element.selector, 'form.wide.card')
  assert.equal(describe(plain, 'h').element.id, null)
})

test('text is cut between code points, never inside a surrogate pair', () => {
  var text = describe(el('a', {}, 'a'.repeat(99) + '😀 more'), 'h').element.text
  assert.equal(text, 'a'.repeat(99) + '😀')
  assert.equal(describe(el('a', {}, '😀'.repeat(150)), 'h').element.text, '😀'.repeat(100))
})
