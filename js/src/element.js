// What a click is about. Attributes are read with getAttribute, not as properties: a <form>
// exposes its controls as properties, so form.id is the <input name=id> inside it.
import { clean, cut } from './fields.js'

// A short CSS selector that survives content edits: "#id", else the tag and first two classes
// ("a.btn.cta"). Names are escaped, so it is always valid for document.querySelector.
export var selector = (el, id = el.getAttribute('id')) =>
  id
    ? '#' + CSS.escape(id)
    : [el.localName, ...(el.getAttribute('class')?.match(/\S+/g) || []).slice(0, 2).map(CSS.escape)].join('.')

// The event fields of a click on `el`: data-funnel-prop-* as props, outbound for links to
// another host, and the element: tag, text (whitespace collapsed, trimmed, capped at 100
// characters), href (links), id and selector.
// The text is never what was typed: of the form controls only submit, button and reset inputs
// have one, their label (the value); a button's text is its visible text, not its value.
export var describe = (el, host) => {
  var props = {}
  for (var a of el.attributes) a.name.startsWith('data-funnel-prop-') && (props[a.name.slice(17)] = a.value)
  var tag = el.localName
  // Links only (a, area): an SVG link's href is an object, a form's a control named href.
  var href = typeof el.href == 'string' ? el.href : void 0
  var text =
    tag == 'input' ? (/^(submit|button|reset)$/.test(el.type) ? el.value : '') : /^(select|textarea)$/.test(tag) ? '' : el.textContent
  return {
    props: clean(props),
    outbound: href != null && !!el.host && el.host != host,
    element: {
      tag,
      text: cut(text.replace(/\s+/g, ' ').trim(), 100),
      href,
      id: el.getAttribute('id'),
      selector: selector(el),
    },
  }
}
